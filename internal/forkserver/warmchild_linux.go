package forkserver

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

	"github.com/mpgo/multiprocessing/internal/bootstrap"
	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// Hooks are what a warm child needs of the package that runs targets.
type Hooks struct {
	// WarmUp runs, before the child says it is ready, what a start will
	// run in it, on a target of its own: a process pays for each page of
	// code and memory the first time it touches it, and that must not be
	// the start's time.
	WarmUp func()
	// Become makes this process the child boot describes, before its
	// lifeline is acted on.
	Become func(boot *wire.Bootstrap)
	// Run runs the target of boot, reports over sock and returns the exit
	// code.
	Run func(boot *wire.Bootstrap, sock *os.File) int
	// ParentGone is called once the child's parent is gone.
	ParentGone func(daemon bool)
}

// ReadHello checks, in a warm child's init, the server's first message
// against the token of its marker.
func ReadHello(sock *os.File, token []byte) error {
	m, err := recvFS(sock)
	if err != nil {
		return fmt.Errorf("reading the forkserver's first message: %w", err)
	}
	if m.Kind != wire.FSHello || subtle.ConstantTimeCompare(m.Data, token) != 1 {
		return errors.New("its token does not match the forkserver's first message")
	}
	return nil
}

// RunWarm is the life of a warm child from Init: it tells the server it is
// ready, waits on ctl for a parent to start it, with the descriptors of
// its handles, then reads its bootstrap from sock and runs it. It ends
// quietly if its ticket is dropped first (the parent or server ended).
func RunWarm(ctl, sock *os.File, h Hooks) int {
	// One P while it waits and starts: a wakeup then takes the one thread
	// there is straight to the target (with more, the runtime hands the
	// goroutine between threads, which costs a start the time of a thread
	// wakeup or two). The target gets them back at its first pause; see
	// restoreProcs.
	procs := runtime.GOMAXPROCS(1)
	h.WarmUp()
	dir, _ := syscall.Getwd()
	buf := bootstrap.Buffer()
	// Started, which tells the parent that this child called Init, waits
	// in the socket: written now, it is not a system call of the start.
	_ = wire.WriteFrame(sock, wire.Started())
	// If this fails, the server is gone or gave the ticket before this
	// child was ready, and the bootstrap may be waiting all the same.
	_ = fdpass.SendMsg(ctl, wire.FSMessage{Kind: wire.FSReady}.Encode())
	// The lifeline is watched from now on, so that no goroutine starts
	// (a thread wakeup) between the start's message and the target.
	go warmLifeline(ctl, h.ParentGone)
	// (No deadline either: its timer would cost the start time, and the
	// read ends if the parent dies.)
	boot, err := bootstrap.RecvFrame(sock, buf)
	// Its ticket was dropped. (A reset, not the end of the stream: a Unix
	// socket closed with data unread, here the Started frame, resets its
	// peer.)
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiprocessing: forkserver child: %v\n", err)
		return 2
	}
	if boot.Dir == dir {
		boot.Dir = "" // no need to enter it
	}
	h.Become(boot)
	warmDaemon = boot.Daemon
	close(warmStarted)
	// With one P, this goroutine runs when the target first blocks, or is
	// preempted (10 ms at most), not before.
	go restoreProcs(procs)
	return h.Run(boot, sock)
}

// restoreProcs gives a warm child's target the processors it had before
// RunWarm took them, unless the target has set GOMAXPROCS itself, and the
// runtime's automatic setting if that is what it had.
func restoreProcs(procs int) {
	if runtime.GOMAXPROCS(0) != 1 {
		return
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		runtime.GOMAXPROCS(procs)
	} else {
		runtime.SetDefaultGOMAXPROCS()
	}
}

// warmStarted is closed once a warm child has its bootstrap, and
// warmDaemon set.
var (
	warmStarted = make(chan struct{})
	warmDaemon  bool
)

// warmLifeline waits for the end of a warm child's control socket, which
// the holder of its ticket keeps open for the child's life: the parent is
// gone, or it dropped the ticket. In the second case the bootstrap socket
// ends too, and RunWarm ends the child; in the first, the bootstrap may
// have come before, and the child runs, without its parent.
func warmLifeline(ctl *os.File, parentGone func(daemon bool)) {
	bootstrap.WatchLifeline(ctl)
	<-warmStarted
	parentGone(warmDaemon)
}
