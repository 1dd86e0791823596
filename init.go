package multiprocessing

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/bootstrap"
	"github.com/mpgo/multiprocessing/internal/forkserver"
	"github.com/mpgo/multiprocessing/internal/proc"
	"github.com/mpgo/multiprocessing/internal/queue"
	"github.com/mpgo/multiprocessing/internal/wire"
)

const libraryPath = "github.com/mpgo/multiprocessing"

// The bootstrap of this process, when it was started as a child.
var (
	childBoot  *wire.Bootstrap // what the parent sent
	childSock  *os.File        // the bootstrap socket, then the lifeline
	childWarm  *os.File        // a warm child's control socket, from its forkserver to its parent
	initCalled atomic.Bool
)

// A child is recognised, and its marker checked, before any init function
// of the user's runs (package bootstrap has read the marker and removed it
// from the environment): a marker that does not check out ends the process
// before any of the user's code runs.
//
// A forkserver is recognised here too, and runs here: none of the user's
// init functions runs in it. A warm child of a forkserver checks its
// marker here, then waits in Init for a parent to give it its bootstrap.
func init() {
	m, err := bootstrap.Found()
	switch {
	case m == nil:
		return
	case err != nil:
		refuse(m, err.Error())
	}
	if err := bootstrap.CheckFD(m.FD); err != nil {
		refuse(m, fmt.Sprintf("descriptor %d: %v", m.FD, err))
	}
	sock := bootstrap.Open(m.FD)
	_ = sock.SetReadDeadline(time.Now().Add(bootstrap.Timeout))
	switch m.Role {
	case "":
		boot, err := bootstrap.ReadChild(sock, m.Token)
		if err != nil {
			refuse(m, err.Error())
		}
		bootstrap.Own(boot.Files)
		childBoot, childSock = boot, sock
	case bootstrap.RoleServer:
		boot, err := bootstrap.ReadServer(sock, m.Token)
		if err != nil {
			refuse(m, err.Error())
		}
		_ = sock.SetReadDeadline(time.Time{})
		os.Exit(forkserver.Serve(sock, boot))
	case bootstrap.RoleWarm:
		// The next descriptor is its bootstrap socket, made ahead.
		if err := bootstrap.CheckFD(m.FD + 1); err != nil {
			refuse(m, fmt.Sprintf("descriptor %d: %v", m.FD+1, err))
		}
		err := forkserver.ReadHello(sock, m.Token)
		if errors.Is(err, io.EOF) {
			os.Exit(2) // the server ended while this child started
		}
		if err != nil {
			refuse(m, err.Error())
		}
		childWarm = sock
		childSock = bootstrap.Open(m.FD + 1)
	}
	_ = sock.SetReadDeadline(time.Time{})
}

// warmHooks is what a warm child of the forkserver runs of this package;
// its WarmUp is set on Unix, in forkserver_unix.go.
var warmHooks = forkserver.Hooks{
	Become: func(boot *wire.Bootstrap) {
		childBoot = boot
		becomeChild(boot)
	},
	Run:        runBooted,
	ParentGone: parentGone,
}

// refuse ends a process whose marker does not check out, before any of the
// user's code runs.
func refuse(m *bootstrap.Marker, why string) {
	fmt.Fprintf(os.Stderr, "multiprocessing: this program was started as a child (%s=%q), but the marker does not check out: %s.\n"+
		"It is set by multiprocessing.Process.Start; do not set it by hand. Exiting without running main.\n", bootstrap.MarkerName, m.Raw, why)
	os.Exit(2)
}

// Init makes a program able to run as a child. Call it first in main, and
// in TestMain. In the main process it returns at once. In a child, started
// by Process.Start, it rebuilds CurrentProcess and ParentProcess from the
// bootstrap message, decodes the arguments, runs the target, joins the
// child's own children, reports the outcome and exits with Python's exit
// code; it never returns there.
//
// Every target must be registered before Init runs, so register them in
// init functions.
func Init() {
	if !startedAsChild() || !initCalled.CompareAndSwap(false, true) {
		return
	}
	if childWarm != nil {
		os.Exit(forkserver.RunWarm(childWarm, childSock, warmHooks))
	}
	os.Exit(runChild(childBoot, childSock))
}

// startedAsChild tells whether this process was started to run a target.
func startedAsChild() bool { return childBoot != nil || childWarm != nil }

// runChild is the life of a child, from its bootstrap to its exit code.
func runChild(boot *wire.Bootstrap, sock *os.File) int {
	becomeChild(boot)
	go func() {
		bootstrap.WatchLifeline(sock)
		parentGone(boot.Daemon)
	}()
	_ = wire.WriteFrame(bootstrap.Reports(sock), wire.Started())
	return runBooted(boot, sock)
}

// becomeChild makes this process the child boot describes: its
// CurrentProcess, ParentProcess and start method.
func becomeChild(boot *wire.Bootstrap) {
	forceStartMethod(StartMethod(boot.Method))
	current = &Process{
		Name: boot.Name, Daemon: boot.Daemon, Authkey: boot.Authkey,
		ident: boot.Identity, role: roleCurrent, state: started,
		parentPid: boot.ParentPid, done: make(chan struct{}),
	}
	parent = &Process{
		Name: boot.ParentName, Authkey: boot.Authkey, role: roleParent, state: started,
		pid: boot.ParentPid, done: make(chan struct{}),
	}
}

// runBooted runs the target of boot in a child that has become it and has
// reported itself started, and reports its outcome over sock.
func runBooted(boot *wire.Bootstrap, sock *os.File) int {
	run, err := prepareTarget(boot)
	code, message := 1, ""
	if err != nil {
		message = fmt.Sprintf("multiprocessing: cannot run the target: %v", err)
	} else {
		queue.DeferPuts() // flushQueues below writes what waits
		code, message = runTarget(run)
		if code == 0 && boot.Worker > 0 {
			code, message = servePool(boot)
		}
	}
	Shutdown()
	flushQueues()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "Process %s:\n%s\n", boot.Name, message)
	}
	_ = wire.WriteFrame(bootstrap.Reports(sock), wire.Outcome(code, message))
	return code
}

// prepareTarget finds the target and decodes its arguments. A forkserver
// child starts in the server's directory: it first enters the parent's, as
// Python's does (a spawned child starts there anyway, and its boot has no
// Dir).
func prepareTarget(boot *wire.Bootstrap) (func() error, error) {
	if boot.Dir != "" {
		if err := os.Chdir(boot.Dir); err != nil {
			return nil, fmt.Errorf("entering the parent's working directory: %w", err)
		}
	}
	t := lookupName(boot.Target)
	if t == nil {
		return nil, fmt.Errorf("%w: %s is not registered in the child; register targets in init functions, not in main", ErrNotRegistered, boot.Target)
	}
	return t.call(boot)
}

// runTarget runs the target and turns how it ended into an exit code and a
// message, as Python's _bootstrap does.
func runTarget(run func() error) (code int, message string) {
	defer func() {
		if v := recover(); v != nil {
			code, message = 1, fmt.Sprintf("panic: %v\n\n%s", v, targetStack(debug.Stack()))
		}
	}()
	if err := run(); err != nil {
		return 1, err.Error()
	}
	return 0, ""
}

// targetStack keeps, of the stack of a panicking child, the goroutine's
// header and the frames between the panic and the library's call of the
// target: the frames the user wrote.
func targetStack(stack []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stack)), "\n")
	if len(lines) < 3 {
		return string(stack)
	}
	out := lines[:1]
	inTarget := false
	for i := 1; i+1 < len(lines); i += 2 {
		fn := lines[i]
		switch {
		case strings.HasPrefix(fn, "panic("):
			inTarget = true
			continue
		case strings.HasPrefix(fn, "reflect.") || strings.HasPrefix(fn, libraryPath+"."):
			inTarget = inTarget && !strings.HasPrefix(fn, libraryPath+".runTarget")
			if inTarget {
				continue
			}
			if len(out) > 1 {
				return strings.Join(out, "\n")
			}
			continue
		}
		if inTarget {
			out = append(out, fn, lines[i+1])
		}
	}
	return strings.Join(out, "\n")
}

// parentGone is what a child does once its lifeline reports its parent
// gone: ParentProcess().Done() closes, and a daemon dies.
func parentGone(daemon bool) {
	close(parent.done)
	if daemon {
		proc.KillSelf()
	}
}
