package multiprocessing

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/proc"
)

// Sentinel errors, for errors.Is. Where Python's multiprocessing has words
// for a mistake, the message uses them; the comment gives the message where
// the value is made below the API. ErrUnsupported also matches Go's
// errors.ErrUnsupported.
var (
	ErrAlreadyStarted     = errors.New("multiprocessing: cannot start a process twice")
	ErrNotStarted         = errors.New("multiprocessing: can only join a started process")
	ErrNotChild           = errors.New("multiprocessing: can only join a child process")
	ErrClosed             = errors.New("multiprocessing: process object is closed")
	ErrStillRunning       = errors.New("multiprocessing: cannot close a process while it is still running")
	ErrDaemonChildren     = errors.New("multiprocessing: daemonic processes are not allowed to have children")
	ErrNotRegistered      = errors.New("multiprocessing: target is not registered")
	ErrBadArgs            = errors.New("multiprocessing: arguments do not fit the target")
	ErrTimeout            = errors.New("multiprocessing: timed out")
	ErrContextSet         = errors.New("multiprocessing: context has already been set")
	ErrUnknownStartMethod = errors.New("multiprocessing: unknown start method")
	ErrUnsupported        = mperr.ErrUnsupported    // "multiprocessing: not supported"
	ErrAuthentication     = mperr.ErrAuthentication // "multiprocessing: authentication failed"
	ErrEmpty              = mperr.ErrEmpty          // "multiprocessing: queue is empty"
	ErrFull               = mperr.ErrFull           // "multiprocessing: queue is full"
	ErrQueueClosed        = mperr.ErrQueueClosed    // "multiprocessing: queue is closed"
	ErrPoolClosed         = mperr.ErrPoolClosed     // "multiprocessing: Pool not running"
	ErrPoolTerminated     = mperr.ErrPoolTerminated // "multiprocessing: pool terminated"
	ErrPoolRunning        = mperr.ErrPoolRunning    // "multiprocessing: Pool is still running"
	ErrNotReady           = errors.New("multiprocessing: result not ready")
	ErrNotHeld            = mperr.ErrNotHeld         // "multiprocessing: release of an unlocked lock"
	ErrNotOwner           = mperr.ErrNotOwner        // "multiprocessing: attempt to release recursive lock not owned by this process"
	ErrOwnerDied          = mperr.ErrOwnerDied       // "multiprocessing: the lock's last holder died holding it"
	ErrTooManyReleases    = mperr.ErrTooManyReleases // "multiprocessing: semaphore or lock released too many times"
	ErrBrokenBarrier      = mperr.ErrBrokenBarrier   // "multiprocessing: barrier is broken"
	ErrInitializer        = errors.New("multiprocessing: pool initializer failed")
)

// ExitError is what Join returns when a child did not end with exit code 0,
// or ended without running its target.
type ExitError struct {
	Name string // the child's Name
	Pid  int
	// Code is as ExitCode reports it: the child's exit status, or -N after
	// death by signal N.
	Code int
	// Message is the error the target returned, or its panic value and
	// stack, as the child printed it after "Process <name>:". It is empty
	// when the child called os.Exit or was killed. When the child never ran
	// its target because it did not call Init, Message says so.
	Message string
}

// Error says which process ended how, then the child's message, if any:
// "multiprocessing: process Process-1 (pid 42) exited with code 1: boom".
func (e *ExitError) Error() string {
	var how string
	if e.Code < 0 {
		how = fmt.Sprintf("was killed by %s (exit code %d)", signalName(-e.Code), e.Code)
	} else {
		how = fmt.Sprintf("exited with code %d", e.Code)
	}
	s := fmt.Sprintf("multiprocessing: process %s (pid %d) %s", e.Name, e.Pid, how)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// signalName gives Python's name for a signal number, "SIGTERM", or the
// number when there is none.
func signalName(n int) string {
	name := proc.SignalName(syscall.Signal(n))
	if name == "" {
		return fmt.Sprint(n)
	}
	return name
}
