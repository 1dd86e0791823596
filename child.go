package multiprocessing

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// markerName is the environment variable that tells a program it was
// started as a child: "VERSION:FD:TOKEN", where FD is its end of the
// bootstrap socket and TOKEN must match the bootstrap message.
const markerName = "MPGO_CHILD"

const libraryPath = "github.com/mpgo/multiprocessing"

// bootstrapTimeout bounds how long a child waits for its bootstrap message,
// which its parent sends as soon as the child exists: only a marker that
// points at some unrelated socket makes it wait that long. (A variable for
// the tests.)
var bootstrapTimeout = 30 * time.Second

// The bootstrap of this process, when it was started as a child.
var (
	childMarker string          // the marker as found, for messages
	childBoot   *wire.Bootstrap // what the parent sent
	childSock   *os.File        // the bootstrap socket, then the lifeline
	childWarm   *os.File        // a warm child's control socket, from its forkserver to its parent
	warmDir     string          // a warm child's working directory, as it started
	initCalled  atomic.Bool
)

// A child is recognised, and its marker checked, before any init function
// of the user's runs: the marker is removed so that no user code sees it and
// no program the child starts inherits it, and a marker that does not check
// out ends the process before any of the user's code runs.
//
// A forkserver is recognised here too, and runs here: none of the user's
// init functions runs in it. A warm child of a forkserver checks its
// marker here, then waits in Init for a parent to give it its bootstrap.
func init() {
	raw, ok := os.LookupEnv(markerName)
	if !ok {
		return
	}
	os.Unsetenv(markerName)
	childMarker = raw
	parts := strings.Split(raw, ":")
	if len(parts) != 3 && len(parts) != 4 {
		refuse("it is not VERSION:FD:TOKEN")
	}
	if parts[0] != strconv.Itoa(wire.Version) {
		refuse(fmt.Sprintf("it has version %q, this program understands %d", parts[0], wire.Version))
	}
	role := ""
	if len(parts) == 4 {
		role = parts[3]
	}
	if role != "" && role != roleServer && role != roleWarm {
		refuse(fmt.Sprintf("unknown role %q", role))
	}
	fd, err := strconv.Atoi(parts[1])
	if err != nil || fd < 3 {
		refuse(fmt.Sprintf("%q is not a descriptor number", parts[1]))
	}
	if err := checkBootstrapFD(fd); err != nil {
		refuse(fmt.Sprintf("descriptor %d: %v", fd, err))
	}
	sock, err := openBootstrap(fd)
	if err != nil {
		refuse(fmt.Sprintf("descriptor %d: %v", fd, err))
	}
	_ = sock.SetReadDeadline(time.Now().Add(bootstrapTimeout))
	token := []byte(parts[2])
	switch role {
	case "":
		boot, err := readBootstrap(sock, token)
		if err != nil {
			refuse(err.Error())
		}
		childBoot, childSock = boot, sock
	case roleServer:
		boot, err := readServerBoot(sock, token)
		if err != nil {
			refuse(err.Error())
		}
		_ = sock.SetReadDeadline(time.Time{})
		os.Exit(serveForkserver(sock, boot))
	case roleWarm:
		// The next descriptor is its bootstrap socket, made ahead.
		if err := checkBootstrapFD(fd + 1); err != nil {
			refuse(fmt.Sprintf("descriptor %d: %v", fd+1, err))
		}
		err := readHello(sock, token)
		if errors.Is(err, io.EOF) {
			os.Exit(2) // the server ended while this child started
		}
		if err != nil {
			refuse(err.Error())
		}
		childWarm = sock
		childSock, _ = openBootstrap(fd + 1)
	}
	_ = sock.SetReadDeadline(time.Time{})
}

// The roles of the forkserver's processes in their markers.
const (
	roleServer = "server"
	roleWarm   = "warm"
)

// readBootstrap reads a child's bootstrap message from sock and checks it
// against the token of its marker.
func readBootstrap(sock *os.File, token []byte) (*wire.Bootstrap, error) {
	frame, err := wire.ReadFrame(sock)
	if err != nil {
		return nil, fmt.Errorf("reading the bootstrap message: %v", err)
	}
	boot, err := wire.DecodeBootstrap(frame)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(boot.Token), token) != 1 {
		return nil, errors.New("its token does not match the bootstrap message")
	}
	return boot, nil
}

// readServerBoot reads a forkserver's bootstrap message.
func readServerBoot(sock *os.File, token []byte) (*wire.ServerBoot, error) {
	frame, err := wire.ReadFrame(sock)
	if err != nil {
		return nil, fmt.Errorf("reading the forkserver's bootstrap message: %v", err)
	}
	boot, err := wire.DecodeServerBoot(frame)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(boot.Token), token) != 1 {
		return nil, errors.New("its token does not match the forkserver's bootstrap message")
	}
	return boot, nil
}

// refuse ends a process whose marker does not check out, before any of the
// user's code runs.
func refuse(why string) {
	fmt.Fprintf(os.Stderr, "multiprocessing: this program was started as a child (%s=%q), but the marker does not check out: %s.\n"+
		"It is set by multiprocessing.Process.Start; do not set it by hand. Exiting without running main.\n", markerName, childMarker, why)
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
		os.Exit(runWarm(childWarm, childSock))
	}
	os.Exit(runChild(childBoot, childSock))
}

// startedAsChild tells whether this process was started to run a target.
func startedAsChild() bool { return childBoot != nil || childWarm != nil }

// runChild is the life of a child, from its bootstrap to its exit code.
func runChild(boot *wire.Bootstrap, sock *os.File) int {
	becomeChild(boot)
	go watchLifeline(sock, boot.Daemon)
	_ = wire.WriteFrame(sock, wire.Started())
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
		code, message = runTarget(run)
	}
	Shutdown()
	flushQueues()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "Process %s:\n%s\n", boot.Name, message)
	}
	_ = wire.WriteFrame(sock, wire.Outcome(code, message))
	return code
}

// prepareTarget finds the target and decodes its arguments. A forkserver
// child starts in the server's directory: it first enters the parent's, as
// Python's does (a spawned child starts there anyway).
func prepareTarget(boot *wire.Bootstrap) (func() error, error) {
	if boot.Dir != "" && boot.Dir != warmDir {
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

// watchLifeline waits for the parent to go away: the read ends when its
// end of the bootstrap socket closes, which the kernel does when it dies.
// A daemon dies with it; any child can see it through ParentProcess.
func watchLifeline(sock *os.File, daemon bool) {
	var buf [512]byte
	for {
		if _, err := sock.Read(buf[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
	}
	parentGone(daemon)
}

// parentGone is what a child does once its lifeline reports its parent
// gone: ParentProcess().Done() closes, and a daemon dies.
func parentGone(daemon bool) {
	close(parent.done)
	if daemon {
		killSelf()
	}
}
