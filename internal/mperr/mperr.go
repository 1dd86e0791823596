// Package mperr holds the sentinel errors of package multiprocessing, so
// that the layers below the API can return them: the root re-exports these
// very values, and errors.Is matches them at every level, as os does with
// GOROOT's internal/oserror.
package mperr

import "errors"

// The sentinels that machinery below the API returns. Their messages are
// the API's: Python's words, after "multiprocessing: ".
var (
	ErrUnsupported    error = &unsupported{"multiprocessing: not supported"}
	ErrAuthentication       = errors.New("multiprocessing: authentication failed")
	ErrEmpty                = errors.New("multiprocessing: queue is empty")
	ErrFull                 = errors.New("multiprocessing: queue is full")
	ErrQueueClosed          = errors.New("multiprocessing: queue is closed")
	ErrPoolClosed           = errors.New("multiprocessing: Pool not running")
	ErrPoolTerminated       = errors.New("multiprocessing: pool terminated")
	ErrPoolRunning          = errors.New("multiprocessing: Pool is still running")
)

// unsupported is ErrUnsupported's type: it also matches Go's
// errors.ErrUnsupported, so a caller that knows only the standard library's
// sentinel still recognises it.
type unsupported struct{ msg string }

func (e *unsupported) Error() string { return e.msg }
func (e *unsupported) Is(target error) bool {
	return target == errors.ErrUnsupported
}

// The sentinels of the locks, semaphores and barriers.
var (
	ErrNotHeld         = errors.New("multiprocessing: release of an unlocked lock")
	ErrNotOwner        = errors.New("multiprocessing: attempt to release recursive lock not owned by this process")
	ErrOwnerDied       = errors.New("multiprocessing: the lock's last holder died holding it")
	ErrTooManyReleases = errors.New("multiprocessing: semaphore or lock released too many times")
	ErrBrokenBarrier   = errors.New("multiprocessing: barrier is broken")
)
