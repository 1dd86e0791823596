package multiprocessing_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

// helperEnv makes the test binary, started by a test with exec, act as a
// small program of its own instead of running the tests (see helpers).
const helperEnv = "MP_TEST_HELPER"

// methodEnv makes a helper use that start method by default.
const methodEnv = "MP_TEST_METHOD"

func TestMain(m *testing.M) {
	if method := os.Getenv(methodEnv); method != "" {
		_ = mp.SetStartMethod(mp.StartMethod(method), true)
	}
	name := os.Getenv(helperEnv)
	h, isHelper := helpers[name]
	if name != "" && !isHelper {
		fmt.Fprintf(os.Stderr, "no helper %q\n", name)
		os.Exit(2)
	}
	if isHelper && h.beforeInit {
		os.Exit(h.run())
	}
	mp.Init()
	if isHelper {
		os.Exit(h.run())
	}
	code := m.Run()
	// Every helper's test runs in a whole run on Linux; elsewhere some skip
	// before they start theirs.
	whole := flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == ""
	if code == 0 && whole && !testing.Short() && runtime.GOOS == "linux" {
		if unused := unusedHelpers(); len(unused) > 0 {
			fmt.Fprintf(os.Stderr, "helper programs no test uses: %v\n", unused)
			code = 1
		}
	}
	if buildsDir != "" {
		os.RemoveAll(buildsDir)
	}
	os.Exit(code)
}

// Targets. Those that tell the test something write one JSON object to the
// *os.File they are given.

func init() {
	mp.Register(noop)
	mp.Register(exitWith)
	mp.Register(returnError)
	mp.Register(panicWith)
	mp.Register(sleepForever)
	mp.Register(panicInGoroutine)
	mp.Register(describe)
	mp.Register(sum)
	mp.Register(describeAny)
	mp.Register(probeFD)
	mp.Register(startChild)
	mp.Register(startDaemonAndWait)
	mp.Register(outliveParent)
	mp.Register(&counter{})
	mp.RegisterName("named-target", namedTarget)
}

// namedTarget is a function literal: Register refuses it, RegisterName
// gives it a name.
var namedTarget = func(w *os.File) error { return send(w, map[string]bool{"named": true}) }

func noop() {}

func exitWith(code int) { os.Exit(code) }

func returnError(msg string) error { return errors.New(msg) }

func panicWith(msg string) { panic(msg) }

func sleepForever() { select {} }

// panicInGoroutine panics outside the target's goroutine, where nothing
// recovers: the Go runtime ends the child with exit code 2.
func panicInGoroutine() {
	go panic("from a goroutine")
	select {}
}

type description struct {
	Pid, Ppid              int
	Name                   string
	ParentName             string
	ParentPid              int
	Method                 mp.StartMethod
	Args                   []string
	Cwd                    string
	Marker                 string
	HasMarker              bool
	Authkey                []byte
	Daemon                 bool
	CoverDir               string
	Text                   string
	Extra                  []int
	ChildDaemonFlag        bool
	CurrentJoin, ChildName string
	Umask                  int
	CoreLimit              uint64
}

func describeSelf(text string) description {
	cwd, _ := os.Getwd()
	marker, has := os.LookupEnv("MPGO_CHILD")
	cur := mp.CurrentProcess()
	d := description{
		Pid: os.Getpid(), Ppid: os.Getppid(), Name: cur.Name,
		Method: mp.GetStartMethod(false), Args: os.Args, Cwd: cwd,
		Marker: marker, HasMarker: has, Authkey: cur.Authkey, Daemon: cur.Daemon,
		CoverDir: os.Getenv("GOCOVERDIR"), Text: text,
	}
	d.Umask, d.CoreLimit = umaskAndCoreLimit()
	if pp := mp.ParentProcess(); pp != nil {
		d.ParentName, d.ParentPid = pp.Name, pp.Pid()
	}
	if err := cur.Join(); err != nil {
		d.CurrentJoin = err.Error()
	}
	return d
}

func describe(w *os.File, text string) error { return send(w, describeSelf(text)) }

func sum(w *os.File, prefix string, xs ...int) error {
	total := 0
	for _, x := range xs {
		total += x
	}
	return send(w, describeSelf(fmt.Sprintf("%s%d/%d", prefix, total, len(xs))))
}

type point struct{ X, Y int }

func describeAny(w *os.File, v any, p *point, m map[string]int) error {
	return send(w, describeSelf(fmt.Sprintf("%#v %v %v", v, p, m)))
}

// probeFD reports, for each descriptor, its inode, or -1 when it is closed.
func probeFD(w *os.File, fds ...int) error {
	d := describeSelf("")
	for _, fd := range fds {
		d.Extra = append(d.Extra, inode(fd))
	}
	return send(w, d)
}

// startChild starts a grandchild that describes itself on w, and reports
// the error of its Start or Join, if any.
func startChild(w *os.File, daemon bool) error {
	p := mp.NewProcess(describe, w, "grandchild")
	flag := p.Daemon
	p.Daemon = daemon
	if err := p.Start(); err != nil {
		return send(w, description{Text: "start: " + err.Error(), ChildDaemonFlag: flag})
	}
	return p.Join()
}

// startDaemonAndWait starts a daemon grandchild that sleeps, reports its pid
// and then sleeps too, until it is killed.
func startDaemonAndWait(w *os.File) error {
	p := mp.NewProcess(sleepForever)
	p.Daemon = true
	if err := p.Start(); err != nil {
		return err
	}
	if err := send(w, description{Pid: p.Pid()}); err != nil {
		return err
	}
	select {}
}

// outliveParent starts a non-daemon grandchild that waits for this process
// to die and then reports that it is still alive.
func outliveParent(w *os.File) error {
	p := mp.NewProcess(reportParentDeath, w)
	if err := p.Start(); err != nil {
		return err
	}
	if err := send(w, description{Pid: p.Pid()}); err != nil {
		return err
	}
	select {}
}

func reportParentDeath(w *os.File) error {
	select {
	case <-mp.ParentProcess().Done():
	case <-time.After(time.Minute):
		return errors.New("the parent did not die")
	}
	d := description{Pid: os.Getpid(), Text: "parent died, still alive", Daemon: mp.ParentProcess().IsAlive()}
	// Join on ParentProcess waits for the parent's death, as in Python.
	if err := mp.ParentProcess().JoinTimeout(10 * time.Second); err != nil {
		d.CurrentJoin = err.Error()
	}
	return send(w, d)
}

func init() { mp.Register(reportParentDeath) }

// counter is a Runner, as a subclass of Process with run() is in Python.
type counter struct {
	*mp.Process
	Max    int
	Out    *os.File
	hidden int
}

func (c *counter) Run() error {
	return send(c.Out, description{Name: c.Name, Pid: c.Pid(), Text: fmt.Sprintf("max=%d hidden=%d", c.Max, c.hidden)})
}

func send(w *os.File, v any) error {
	defer w.Close()
	return json.NewEncoder(w).Encode(v)
}

// reportPipe returns a pipe whose write end is for a child; the test's copy
// of it is closed once the child has it (call the returned function after
// Start).
func reportPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// receive reads one description from r, failing the test after a deadline.
func receive(t *testing.T, r *os.File) description {
	t.Helper()
	// Windows' pipes take no deadline: there the test's own timeout
	// bounds the read.
	if err := r.SetReadDeadline(time.Now().Add(20 * time.Second)); !errors.Is(err, os.ErrNoDeadline) {
		require.NoError(t, err)
	}
	var d description
	require.NoError(t, json.NewDecoder(r).Decode(&d))
	return d
}

// run starts a process for target under method, joins it and returns Join's
// error.
func run(t *testing.T, method mp.StartMethod, target any, args ...any) (*mp.Process, error) {
	t.Helper()
	ctx, err := mp.GetContext(method)
	require.NoError(t, err)
	p := ctx.Process(target, args...)
	require.NoError(t, p.Start())
	return p, p.Join()
}

// eventually polls cond until it holds, and fails the test if it does not
// within d. It runs cond on the test's goroutine (testify's Eventually
// starts one per poll, which would spoil goroutine counts).
func eventually(t *testing.T, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var (
	buildsMu  sync.Mutex
	builds    = map[string]string{}
	buildsDir string // removed by TestMain when the tests end
)
