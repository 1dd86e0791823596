package multiprocessing

import (
	"os"
	"syscall"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// StartMethod names how a child is started. Go cannot fork a running
// runtime (only the calling thread would survive in the copy), so every
// method starts the same executable again; they differ in what the child
// inherits from the parent and in how fast it starts:
//
//   - Spawn: a fresh exec that inherits only stdout, stderr and the
//     descriptors of *os.File arguments; stdin is /dev/null.
//   - Fork: an exec that inherits everything the operating system can pass:
//     every descriptor open in the parent, at the same number, and stdin,
//     environment, working directory, umask and resource limits.
//   - Forkserver (Linux): children handed out by a server process, one per
//     context, started on the context's first Start (and again after it
//     dies). It keeps children already exec'd and initialised up to Init,
//     so a Start costs a message, not an exec. The child inherits what a
//     spawned one does, from the server: stdout and stderr, environment,
//     umask and limits as they were when the server started; it enters
//     the parent's working directory, and gets the descriptors of its
//     arguments. Its os.Getppid is the server, as in Python;
//     ParentProcess is the process that started it. The server's socket
//     sits in a private directory and each connection proves the authkey;
//     a connection that fails gives ErrAuthentication. Elsewhere than on
//     Linux, Start returns ErrUnsupported.
type StartMethod string

// The start methods, as Python names them.
const (
	Spawn      StartMethod = "spawn"
	Fork       StartMethod = "fork"       // Unix only
	Forkserver StartMethod = "forkserver" // Unix only
)

// launcher is what a start method does: start a child that will read boot
// from its bootstrap socket, with files among its descriptors.
type launcher interface {
	launch(boot *wire.Bootstrap, files []*os.File) (popen, error)
}

// popen is a started child as Process sees it, whatever the start method:
// CPython's Popen classes.
type popen interface {
	pid() int
	// wait blocks until the child has ended and returns its exit code
	// (-N after signal N) and what it reported. One goroutine calls it, once.
	wait() (code int, report wire.Report)
	// signal sends sig, or does nothing once the child has ended.
	signal(sig syscall.Signal) error
	// release frees what is left once wait has returned.
	release()
}

// A lateWaiter is a popen that can tell when its wait would no longer
// block: Start then leaves the goroutine that calls wait to it, instead of
// starting one at once. A new goroutine wakes a thread to run it, which a
// forkserver start, a tenth of a millisecond, would pay for.
type lateWaiter interface {
	// whenEnded calls start on a new goroutine once the child has ended
	// or the way it reports has broken, at once if it already has.
	whenEnded(start func())
}

type unsupportedMethod StartMethod

func (m unsupportedMethod) launch(*wire.Bootstrap, []*os.File) (popen, error) {
	return nil, &unsupportedError{string(m)}
}

type unsupportedError struct{ what string }

func (e *unsupportedError) Error() string {
	return "the " + e.what + " start method is not supported here yet"
}
func (e *unsupportedError) Unwrap() error { return ErrUnsupported }
