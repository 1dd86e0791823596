package pool

import (
	"os"

	"github.com/mpgo/multiprocessing/internal/mperr"
)

// NewLink is not there yet on Windows, whose start method is not.
func NewLink() (*Link, []*os.File, error) { return nil, nil, mperr.ErrUnsupported }

// CloseFiles closes the files NewLink made for the worker.
func CloseFiles(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

func (l *Link) closeSocket() { _ = l.sock.Close() }

// Close closes the pool's end.
func (l *Link) Close() { l.closeSocket() }

// WorkerLink is the worker's end of a link.
func WorkerLink([]int) (*Link, error) { return nil, mperr.ErrUnsupported }
