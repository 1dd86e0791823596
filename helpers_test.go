package multiprocessing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"

	"time"

	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

// helpers are small programs made of the test binary, for what a test
// cannot do to itself: die, exit from main, print on its own stderr, skip
// Init. A test starts the binary with helperSetting(name) in its
// environment; TestMain runs the helper instead of the tests. As in
// os/exec's tests, a name registered twice panics, and a run of the whole
// suite fails if a helper is never used.
var (
	helpers     = map[string]helperProgram{}
	helpersUsed sync.Map // names given to helperSetting
)

type helperProgram struct {
	run        func() int
	beforeInit bool // run before Init
	benchmark  bool // started by the benchmarks only
}

// registerHelper adds the helper program name.
func registerHelper(name string, run func() int) { addHelper(name, helperProgram{run: run}) }

func addHelper(name string, h helperProgram) {
	if _, dup := helpers[name]; dup {
		panic("helper " + name + " registered twice")
	}
	helpers[name] = h
}

// helperSetting is the environment entry that makes the test binary run
// the helper name; it notes the helper used.
func helperSetting(name string) string {
	if _, ok := helpers[name]; !ok {
		panic("no helper " + name)
	}
	helpersUsed.Store(name, true)
	return helperEnv + "=" + name
}

// unusedHelpers lists the helpers no test has started, for a run of the
// whole suite.
func unusedHelpers() []string {
	var unused []string
	for name, h := range helpers {
		if _, used := helpersUsed.Load(name); !used && !h.benchmark {
			unused = append(unused, name)
		}
	}
	slices.Sort(unused)
	return unused
}

func init() {
	addHelper("noinit", helperProgram{run: helperNoInit, beforeInit: true})
	// The floor of the start benchmarks: this binary, doing nothing.
	addHelper("exit", helperProgram{run: func() int { return 0 }, beforeInit: true, benchmark: true})
	// A child whose marker a test forged: says whether TestMain ran
	// before Init ended it.
	addHelper("marker", helperProgram{run: func() int {
		fmt.Println("TestMain ran")
		mp.Init()
		return 0
	}, beforeInit: true})
}

func init() {
	for name, run := range map[string]func() int{
		// A parent whose main returns while its daemon child runs.
		"main-returns": func() int {
			p := mp.NewProcess(sleepForever)
			p.Daemon = true
			if err := p.Start(); err != nil {
				fmt.Println(err)
				return 1
			}
			fmt.Println(p.Pid(), forkserverInfo())
			return 0
		},
		// A parent that starts children whose target fails, and joins them, so
		// that the test sees the children's stderr.
		"failing-children": func() int {
			for _, target := range []any{returnError, panicWith} {
				p := mp.NewProcess(target, "boom")
				if err := p.Start(); err != nil {
					fmt.Println(err)
					return 1
				}
				_ = p.Join()
			}
			return 0
		},
		// A program that starts and joins a child, then returns: with a
		// forkserver, while warm children wait for tickets it held.
		"start-join-return": func() int {
			p := mp.NewProcess(noop)
			if err := p.Start(); err != nil {
				fmt.Println(err)
				return 1
			}
			if err := p.Join(); err != nil {
				fmt.Println(err)
				return 1
			}
			return 0
		},
		// A parent that prints "ready" and the pids of a daemon and a non-daemon
		// child, then waits to be killed.
		"killed-parent": func() int {
			d := mp.NewProcess(sleepForever)
			d.Daemon = true
			n := mp.NewProcess(sleepForever)
			if err := d.Start(); err != nil {
				fmt.Println(err)
				return 1
			}
			if err := n.Start(); err != nil {
				fmt.Println(err)
				return 1
			}
			fmt.Println(d.Pid(), n.Pid(), forkserverInfo())
			time.Sleep(time.Minute)
			return 0
		},
	} {
		registerHelper(name, run)
	}
}

// forkserverInfo is the pid and directory of this process's forkserver,
// "0 -" if it has none.
func forkserverInfo() string {
	if mp.ForkserverPid() == 0 {
		return "0 -"
	}
	return fmt.Sprint(mp.ForkserverPid(), " ", mp.ForkserverDir())
}

// helperNoInit is a program that forgot to call Init: it starts a child,
// which runs this same main again instead of the target.
func helperNoInit() int {
	p := mp.NewProcess(noop)
	if err := p.Start(); err != nil {
		fmt.Println("start refused:", err)
		return 3
	}
	fmt.Println("joined:", p.Join())
	return 0
}

func init() {
	// A program whose file is deleted before it starts a child: on Linux
	// the child is /proc/self/exe, the image that is running.
	registerHelper("deleted-binary", func() int {
		if err := os.Remove(os.Args[0]); err != nil {
			fmt.Println(err)
			return 1
		}
		p := mp.NewProcess(exitWith, 5)
		if err := p.Start(); err != nil {
			fmt.Println("start:", err)
			return 1
		}
		err := p.Join()
		code, _ := p.ExitCode()
		fmt.Println("child exit code", code, err != nil)
		return 0
	})
}

func init() {
	// The default context from a fresh process: unset, set once, refused a
	// second time, forced, and reported by a child.
	registerHelper("start-methods", func() int {
		fmt.Printf("unset: %q\n", mp.GetStartMethod(true))
		fmt.Println("set spawn:", mp.SetStartMethod(mp.Spawn, false))
		fmt.Println("set fork:", mp.SetStartMethod(mp.Fork, false))
		fmt.Println("now:", mp.GetStartMethod(false))
		fmt.Println("force fork:", mp.SetStartMethod(mp.Fork, true))
		fmt.Println("force unknown:", mp.SetStartMethod("vfork", true))
		fmt.Println("force none:", mp.SetStartMethod("", true))
		fmt.Printf("unset again: %q\n", mp.GetStartMethod(true))
		fmt.Println("fixed by use:", mp.GetStartMethod(false))
		fmt.Println("set after use:", mp.SetStartMethod(mp.Spawn, false))
		_ = mp.SetStartMethod(mp.Spawn, true)
		r, w, err := os.Pipe()
		if err != nil {
			return 1
		}
		p := mp.NewProcess(describe, w, "")
		if err := p.Start(); err != nil {
			fmt.Println(err)
			return 1
		}
		w.Close()
		var d description
		if err := json.NewDecoder(r).Decode(&d); err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("child method:", d.Method, p.Join())
		return 0
	})
}

// helper runs the test binary as the helper program name and returns what
// it printed on stdout and stderr.
func helper(t *testing.T, name string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, helperSetting(name), "GORACE=atexit_sleep_ms=0")...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// settle waits, under forkserver or while a forkserver runs, until the
// warm children this process keeps tickets for are all there: each holds
// descriptors here, and a ticket may still be on its way after a start.
func settle(t *testing.T, method mp.StartMethod) {
	t.Helper()
	if method != mp.Forkserver && !mp.ForkserverRunning() {
		return
	}
	eventually(t, 20*time.Second, func() bool {
		n, err := mp.ForkserverWarm()
		return err == nil && n == mp.ForkserverPool
	}, "the forkserver's warm children are not all ready")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// supported skips the test where processes cannot share memory here.
func supported(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, mp.ErrUnsupported) {
		t.Skip("no shared memory here:", err)
	}
	require.NoError(t, err)
}

// startTarget starts target under method and kills and joins it when the
// test ends.
func startTarget(t *testing.T, method mp.StartMethod, target any, args ...any) *mp.Process {
	t.Helper()
	ctx, err := mp.GetContext(method)
	require.NoError(t, err)
	p := ctx.Process(target, args...)
	require.NoError(t, p.Start())
	t.Cleanup(func() {
		p.Kill()
		killedJoin(t, p)
	})
	return p
}

// killedJoin joins a process that was killed, or fails the test if it has
// not ended within 10 s.
func killedJoin(t *testing.T, p *mp.Process) {
	t.Helper()
	require.NotErrorIs(t, p.JoinTimeout(10*time.Second), mp.ErrTimeout, "the process did not end")
}
