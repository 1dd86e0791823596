package pool

import (
	"fmt"
	"os"

	"github.com/mpgo/multiprocessing/internal/conn"
)

// On Windows a worker's link is a duplex named pipe, a byte stream, whose
// worker end the worker inherits by handle. There is no page: a worker
// says when it starts a task after a wait (wire.TasksStarted).

// NewLink makes a worker's pipe. It returns the pool's end and the file
// to pass to the worker; close that with CloseFiles once the worker has
// it.
func NewLink() (*Link, []*os.File, error) {
	mine, theirs, err := conn.PipePair(false)
	if err != nil {
		return nil, nil, fmt.Errorf("a pool worker's pipe: %w", err)
	}
	return &Link{sock: mine}, []*os.File{theirs}, nil
}

// CloseFiles closes the files NewLink made for the worker.
func CloseFiles(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

func (l *Link) closeSocket() { _ = l.sock.Close() }

// Close closes the pool's end.
func (l *Link) Close() { l.closeSocket() }

// WorkerLink is the worker's end of a link, from the handle it inherited.
func WorkerLink(fds []int) (*Link, error) {
	if len(fds) != 1 {
		return nil, fmt.Errorf("a pool worker with %d handles for its link", len(fds))
	}
	return &Link{sock: os.NewFile(uintptr(fds[0]), "pool worker")}, nil
}
