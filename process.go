package multiprocessing

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mpgo/multiprocessing/internal/bootstrap"
	"github.com/mpgo/multiprocessing/internal/launch"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// Process is a target running, or to be run, in a child process: Python's
// multiprocessing.Process. Make one with NewProcess or Context.Process, set
// its exported fields if the defaults do not suit, then Start it and Join it.
//
// The exported fields are read once, by Start; changing them afterwards has
// no effect on the child. Every method is safe to call from several
// goroutines at once.
type Process struct {
	// Name is "Process-N" by default, where N counts the processes this
	// process has made (every NewProcess advances it); in a child it is
	// "Process-N:M", after Python's identity. Names need not be unique.
	Name string
	// Daemon children are terminated by Shutdown and never outlive their
	// parent, even when it is killed with SIGKILL; they may not start
	// children of their own. It defaults to the creating process's flag.
	// Set it before Start: a change afterwards has no effect, and the next
	// Join, JoinTimeout, Terminate, Kill, Interrupt or Close returns an
	// error that says so and matches ErrAlreadyStarted (Python refuses the
	// assignment itself), until it is set back.
	Daemon bool
	// Authkey defaults to the creating process's key; the main process's
	// is 32 random bytes. Children inherit it.
	Authkey []byte

	ctx    *Context
	target any
	args   []any
	ident  []int
	role   role
	done   chan struct{}
	// worker, for a pool's worker, is its end of its link to the pool
	// (pool.NewLink): Start passes it on, and the child serves the pool
	// once its target has returned.
	worker []*os.File

	mu        sync.Mutex
	state     state
	pid       int
	parentPid int
	daemon    bool // Daemon as Start read it
	child     launch.Child
	exitCode  int
	err       error // what Join returns once done is closed
}

type role uint8

const (
	roleChild   role = iota // made by NewProcess in this process
	roleCurrent             // CurrentProcess
	roleParent              // ParentProcess, in a child
)

type state uint8

const (
	initial state = iota
	starting
	started
	stopped
	closed
)

var (
	current       = mainProcess()
	parent        *Process
	processCount  atomic.Int64
	activeMu      sync.Mutex
	active        = map[*Process]struct{}{}
	noInitMessage = "the child did not call multiprocessing.Init (call it first in main, and in TestMain)"
	errUninitMain = errors.New("multiprocessing: this process was started as a child but did not call multiprocessing.Init, so it may not start children; call Init first in main")
)

// mainProcess is the process as it starts. A child's key comes with its
// bootstrap and Init replaces it; making a random one it will not use
// would cost a child's start the random generator's set-up (page faults
// and a timer).
func mainProcess() *Process {
	var key []byte
	if !bootstrap.StartedAsChild() {
		key = make([]byte, 32)
		rand.Read(key)
	}
	return &Process{Name: "MainProcess", Authkey: key, role: roleCurrent, state: started, done: make(chan struct{})}
}

// NewProcess makes a process that will run target(args...) in a child
// started with the default context's start method. target is a function or
// a Runner registered with Register; args must fit its parameters. Nothing is
// checked or started until Start.
func NewProcess(target any, args ...any) *Process {
	return defaultContext.Process(target, args...)
}

func newProcess(ctx *Context, target any, args []any) *Process {
	cur := CurrentProcess()
	ident := append(slices.Clone(cur.ident), int(processCount.Add(1)))
	parts := make([]string, len(ident))
	for i, n := range ident {
		parts[i] = strconv.Itoa(n)
	}
	return &Process{
		Name:      "Process-" + strings.Join(parts, ":"),
		Daemon:    cur.Daemon,
		Authkey:   slices.Clone(cur.Authkey),
		ctx:       ctx,
		target:    target,
		args:      args,
		ident:     ident,
		role:      roleChild,
		parentPid: os.Getpid(),
		done:      make(chan struct{}),
	}
}

// Start checks the target and its arguments, then starts the child with the
// process's start method. It returns once the child exists; the target runs
// in it soon after. Errors: ErrAlreadyStarted if called twice,
// ErrDaemonChildren in a daemon, ErrNotRegistered and ErrBadArgs (naming the
// target, the argument and both types) before any process exists, and any
// error of the operating system. After an error Start may be tried again.
func (p *Process) Start() error {
	if startedAsChild() && !initCalled.Load() {
		return errUninitMain
	}
	p.mu.Lock()
	switch {
	case p.state == closed:
		p.mu.Unlock()
		return ErrClosed
	case p.role != roleChild || p.state != initial:
		p.mu.Unlock()
		return ErrAlreadyStarted
	}
	boot, files, err := p.prepare()
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.state = starting
	p.mu.Unlock()
	po, err := launcherFor(StartMethod(boot.Method)).Launch(boot, files)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.state = initial
		return fmt.Errorf("multiprocessing: starting %s: %w", p.Name, err)
	}
	p.state, p.child, p.pid = started, po, po.Pid()
	activeMu.Lock()
	active[p] = struct{}{}
	activeMu.Unlock()
	if lw, ok := po.(launch.LateWaiter); ok {
		lw.WhenEnded(p.wait)
	} else {
		go p.wait()
	}
	return nil
}

// prepare checks what Start needs and encodes the child's bootstrap message.
func (p *Process) prepare() (*wire.Bootstrap, []*os.File, error) {
	cur := CurrentProcess()
	if cur.Daemon {
		return nil, nil, ErrDaemonChildren
	}
	t, err := lookupTarget(p.target)
	if err != nil {
		return nil, nil, err
	}
	vals, types, err := t.values(p.target, p.args)
	if err != nil {
		return nil, nil, err
	}
	args, err := t.encodeArgs(vals, types)
	if err != nil {
		return nil, nil, err
	}
	args.files = append(args.files, p.worker...)
	method := p.ctx.StartMethod()
	p.daemon = p.Daemon
	return &wire.Bootstrap{
		Target:     t.name,
		Args:       args.gob,
		Handles:    args.handles,
		ArgKinds:   args.kinds,
		Name:       p.Name,
		Identity:   p.ident,
		Daemon:     p.Daemon,
		Authkey:    p.Authkey,
		Method:     string(method),
		ParentName: cur.Name,
		ParentPid:  os.Getpid(),
		Worker:     len(p.worker),
	}, args.files, nil
}

// wait is the one goroutine that waits for this child.
func (p *Process) wait() {
	code, report := p.child.Wait()
	p.mu.Lock()
	p.exitCode = code
	if code != 0 || !report.Started {
		e := &ExitError{Name: p.Name, Pid: p.pid, Code: code, Message: report.Message}
		if !report.Started && code >= 0 {
			e.Message = noInitMessage
		}
		p.err = e
	}
	if p.state == started {
		p.state = stopped
	}
	close(p.done)
	p.mu.Unlock()
	activeMu.Lock()
	delete(active, p)
	activeMu.Unlock()
}

// Run runs the target in the calling process, as Python's run() does, and
// returns its error. A panic in the target is not recovered.
func (p *Process) Run() error {
	t, err := lookupTarget(p.target)
	if err != nil {
		return err
	}
	vals, _, err := t.values(p.target, p.args)
	switch {
	case err != nil:
		return err
	case t.runner != nil:
		return p.target.(Runner).Run()
	}
	_, err = t.invoke(vals)
	return err
}

// Join waits until the process has ended. It returns nil when the child
// exited with code 0, and an *ExitError otherwise, also when the child did
// not call Init and so never ran its target. Errors: ErrNotStarted before
// Start, ErrNotChild for CurrentProcess (a process cannot join itself),
// ErrClosed after Close. On ParentProcess, Join waits until the parent has
// died. Join may be called any number of times, from any goroutine.
func (p *Process) Join() error {
	if err := p.joinable(); err != nil {
		return err
	}
	<-p.done
	return p.result()
}

// JoinTimeout is Join that gives up after d and returns ErrTimeout if the
// process is still running then. With d <= 0 it only polls.
func (p *Process) JoinTimeout(d time.Duration) error {
	if err := p.joinable(); err != nil {
		return err
	}
	if d <= 0 {
		select {
		case <-p.done:
			return p.result()
		default:
			return ErrTimeout
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return p.result()
	case <-t.C:
		return ErrTimeout
	}
}

func (p *Process) joinable() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.state == closed:
		return ErrClosed
	case p.role == roleCurrent:
		return ErrNotChild
	case p.role == roleChild && p.state < started:
		return ErrNotStarted
	}
	return p.daemonChangedLocked()
}

// daemonChangedLocked returns an error when Daemon was changed after
// Start, which Python refuses at the assignment ("process has already
// started"). A Go field cannot refuse; the next method that can fail does.
func (p *Process) daemonChangedLocked() error {
	if p.role == roleChild && p.state >= started && p.state != closed && p.Daemon != p.daemon {
		return &daemonChangedError{name: p.Name, was: p.daemon}
	}
	return nil
}

type daemonChangedError struct {
	name string
	was  bool
}

func (e *daemonChangedError) Error() string {
	return fmt.Sprintf("multiprocessing: %s: process has already started: Daemon changed after Start (from %v to %v), which has no effect; set it back", e.name, e.was, !e.was)
}

// Unwrap makes the error match ErrAlreadyStarted.
func (e *daemonChangedError) Unwrap() error { return ErrAlreadyStarted }

// notChildError is ErrNotChild for a verb other than join: "can only
// terminate a child process".
type notChildError struct{ verb string }

func (e *notChildError) Error() string {
	return "multiprocessing: can only " + e.verb + " a child process"
}

// Unwrap makes the error match ErrNotChild.
func (e *notChildError) Unwrap() error { return ErrNotChild }

func (p *Process) result() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// IsAlive reports whether the process has started and not yet ended. It is
// true for CurrentProcess, and for ParentProcess until the parent dies.
func (p *Process) IsAlive() bool {
	switch p.role {
	case roleCurrent:
		return true
	case roleParent:
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state == started
}

// Pid is the process id: 0 before Start; the child's pid afterwards, also
// once it has ended or been closed.
func (p *Process) Pid() int {
	if p.role == roleCurrent {
		return os.Getpid()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// Ident is the same as Pid, as in Python.
func (p *Process) Ident() int { return p.Pid() }

// ExitCode returns the exit code and true once the process has ended, and
// (0, false) before that. The code is the child's exit status: 0 when the
// target returned nil, 1 when it returned an error or panicked, n after
// os.Exit(n), and -N when signal N killed it. CurrentProcess and
// ParentProcess always give (0, false).
func (p *Process) ExitCode() (code int, done bool) {
	if p.role != roleChild {
		return 0, false
	}
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.exitCode, true
	default:
		return 0, false
	}
}

// Done returns a channel that is closed once the process has ended, for use
// in select: Python's sentinel. It may be called before Start. For
// ParentProcess it is closed when the parent dies; for CurrentProcess never.
func (p *Process) Done() <-chan struct{} { return p.done }

// Terminate sends SIGTERM to the child (on Windows it ends it with
// TerminateProcess). A child that has already ended is left alone and nil
// returned; ErrNotStarted before Start, ErrNotChild for a process that is
// not a child of this one, ErrClosed after Close.
func (p *Process) Terminate() error { return p.signal("terminate", syscall.SIGTERM) }

// Kill sends SIGKILL to the child, as Terminate does SIGTERM.
func (p *Process) Kill() error { return p.signal("kill", syscall.SIGKILL) }

// Interrupt sends SIGINT to the child, as Terminate does SIGTERM. A Go child
// that does not handle SIGINT dies of it: exit code -2.
func (p *Process) Interrupt() error { return p.signal("interrupt", syscall.SIGINT) }

func (p *Process) signal(verb string, sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.daemonChangedLocked(); err != nil {
		return err
	}
	return p.signalLocked(verb, sig)
}

func (p *Process) signalLocked(verb string, sig syscall.Signal) error {
	switch {
	case p.state == closed:
		return ErrClosed
	case p.role != roleChild:
		return &notChildError{verb}
	case p.state < started:
		return ErrNotStarted
	case p.state == stopped:
		return nil
	}
	return p.child.Signal(sig)
}

// Close releases what the Process holds of the operating system. It
// returns ErrStillRunning while the child runs, and nil when called again.
// Afterwards the methods that return an error return ErrClosed; Pid,
// ExitCode and Done keep their last answers.
func (p *Process) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.state == closed:
		return nil
	case p.role != roleChild:
		return &notChildError{"close"}
	case p.state == starting || p.state == started:
		return ErrStillRunning
	}
	if err := p.daemonChangedLocked(); err != nil {
		return err
	}
	if p.child != nil {
		p.child.Release()
		p.child = nil
	}
	p.state = closed
	return nil
}

// String describes the process as Python's repr does:
//
//	<Process name='Process-1' pid=42 parent=41 stopped exitcode=-SIGTERM daemon>
func (p *Process) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "<Process name='%s'", p.Name)
	if p.pid != 0 && p.role == roleChild {
		fmt.Fprintf(&b, " pid=%d", p.pid)
	}
	parentPid := "None"
	if p.parentPid != 0 {
		parentPid = strconv.Itoa(p.parentPid)
	}
	b.WriteString(" parent=" + parentPid)
	switch {
	case p.role == roleCurrent:
		b.WriteString(" started")
	case p.role == roleParent:
		b.WriteString(" unknown")
	case p.state == closed:
		b.WriteString(" closed")
	case p.state == stopped:
		code := strconv.Itoa(p.exitCode)
		if p.exitCode < 0 {
			code = "-" + signalName(-p.exitCode)
		}
		b.WriteString(" stopped exitcode=" + code)
	case p.state == started:
		b.WriteString(" started")
	default:
		b.WriteString(" initial")
	}
	daemon := p.Daemon
	if p.state >= started && p.role == roleChild {
		daemon = p.daemon
	}
	if daemon {
		b.WriteString(" daemon")
	}
	b.WriteString(">")
	return b.String()
}

// CurrentProcess returns the Process of the calling process: Name
// "MainProcess" in the main process; in a child, the Process its parent
// started, with the Name, Daemon and Authkey it had there.
func CurrentProcess() *Process { return current }

// ParentProcess returns the parent of a child, with the parent's Name and
// pid, and a Done channel that is closed when the parent dies. It is nil in
// the main process.
func ParentProcess() *Process { return parent }

// ActiveChildren returns the children of this process that are still
// running. Children that have ended are forgotten.
func ActiveChildren() []*Process {
	activeMu.Lock()
	all := make([]*Process, 0, len(active))
	for p := range active {
		all = append(all, p)
	}
	activeMu.Unlock()
	// IsAlive takes the process's lock, which Start holds while it takes
	// activeMu: so not under activeMu.
	return slices.DeleteFunc(all, func(p *Process) bool { return !p.IsAlive() })
}

// CPUCount is the number of CPUs this process may run on.
func CPUCount() int { return runtime.NumCPU() }

// Shutdown does what Python does when a program exits: it sends SIGTERM to
// every live daemon child, then joins every child. Go runs nothing when
// main returns, so call it at the end of main (defer mp.Shutdown()) to
// wait for children that were not joined; daemon children die with the
// parent anyway.
func Shutdown() {
	for _, p := range ActiveChildren() {
		p.mu.Lock()
		if p.daemon {
			_ = p.signalLocked("terminate", syscall.SIGTERM)
		}
		p.mu.Unlock()
	}
	for _, p := range ActiveChildren() {
		<-p.done
	}
}
