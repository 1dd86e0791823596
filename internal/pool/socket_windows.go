package pool

import (
	"os"

	"github.com/mpgo/multiprocessing/internal/mperr"
)

// Socketpair is not there yet on Windows, whose start method is not.
func Socketpair() (pool, worker *os.File, err error) { return nil, nil, mperr.ErrUnsupported }

// Adopt makes fd, a worker's inherited end of its socket, a file.
func Adopt(fd int) *os.File { return os.NewFile(uintptr(fd), "pool worker") }

// CloseEnd closes an end Socketpair made.
func CloseEnd(f *os.File) { _ = f.Close() }
