//go:build unix

package pool

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
)

// Socketpair makes a worker's socket: the pool's end, in Go's poller, and
// the worker's, to pass to it.
func Socketpair() (pool, worker *os.File, err error) {
	return ownfd.Socketpair(unix.SOCK_STREAM, "pool worker", true, false)
}

// Adopt makes fd, a worker's inherited end of its socket, a file that
// programs the worker starts do not inherit.
func Adopt(fd int) *os.File {
	unix.CloseOnExec(fd)
	return ownfd.Adopt(fd, "pool worker", false)
}

// CloseEnd closes an end Socketpair made.
func CloseEnd(f *os.File) { _ = ownfd.Close(f) }
