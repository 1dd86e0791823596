// Package launch is the seam between a Process and its start method,
// CPython's Popen classes: a Launcher starts a child that will read its
// bootstrap, and the Child it returns is all a Process knows of it. The
// exec launcher, for spawn and fork, is here; the forkserver's is in
// package forkserver.
package launch

import (
	"os"
	"syscall"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// Launcher is what a start method does: start a child that will read boot
// from its bootstrap socket, with files among its descriptors.
type Launcher interface {
	Launch(boot *wire.Bootstrap, files []*os.File) (Child, error)
}

// Child is a started child as a Process sees it, whatever the start method.
type Child interface {
	Pid() int
	// Wait blocks until the child has ended and returns its exit code
	// (-N after signal N) and what it reported. One goroutine calls it, once.
	Wait() (code int, report wire.Report)
	// Signal sends sig, or does nothing once the child has ended.
	Signal(sig syscall.Signal) error
	// Release frees what is left once Wait has returned.
	Release()
}

// A LateWaiter is a Child that can tell when its Wait would no longer
// block: Start then leaves the goroutine that calls Wait to it, instead of
// starting one at once. A new goroutine wakes a thread to run it, which a
// forkserver start, a tenth of a millisecond, would pay for.
type LateWaiter interface {
	// WhenEnded calls start on a new goroutine once the child has ended
	// or the way it reports has broken, at once if it already has.
	WhenEnded(start func())
}

// Unsupported is the Launcher of a start method this system does not have.
type Unsupported string

// Launch returns an *UnsupportedError.
func (u Unsupported) Launch(*wire.Bootstrap, []*os.File) (Child, error) {
	return nil, &UnsupportedError{string(u)}
}

// UnsupportedError is a start method this system does not have; it
// matches ErrUnsupported.
type UnsupportedError struct{ Method string }

func (e *UnsupportedError) Error() string {
	return "the " + e.Method + " start method is not supported here yet"
}

func (e *UnsupportedError) Unwrap() error { return mperr.ErrUnsupported }
