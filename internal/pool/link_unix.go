//go:build unix

package pool

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/ownfd"
)

// NewLink makes a worker's socket, and its page where there are memory
// files. It returns the pool's end and the files to pass to the worker,
// in the order WorkerLink takes them; close those with CloseFiles once
// the worker has them.
func NewLink() (*Link, []*os.File, error) {
	mine, theirs, err := ownfd.Socketpair(unix.SOCK_STREAM, "pool worker", true, false)
	if err != nil {
		return nil, nil, err
	}
	l, files := &Link{sock: mine}, []*os.File{theirs}
	if !pages.Load() {
		return l, files, nil
	}
	page, err := ownfd.Memfd("mpgo-pool-started")
	if errors.Is(err, mperr.ErrUnsupported) {
		return l, files, nil
	}
	if err == nil {
		l.page, err = mapPage(ownfd.FD(page), true)
	}
	if err != nil {
		CloseFiles(files)
		if page != nil {
			_ = ownfd.Close(page)
		}
		_ = ownfd.Close(mine)
		return nil, nil, fmt.Errorf("a pool worker's page: %w", err)
	}
	return l, append(files, page), nil
}

// mapPage maps the page of fd, after sizing it when it is new.
func mapPage(fd int, size bool) ([]byte, error) {
	n := os.Getpagesize()
	if size {
		if err := unix.Ftruncate(fd, int64(n)); err != nil {
			return nil, err
		}
	}
	return unix.Mmap(fd, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

// CloseFiles closes the files NewLink made for the worker.
func CloseFiles(files []*os.File) {
	for _, f := range files {
		_ = ownfd.Close(f)
	}
}

// closeSocket closes the pool's end of the socket.
func (l *Link) closeSocket() { _ = ownfd.Close(l.sock) }

// Close closes the pool's end, page and all, once the worker has ended
// or if it never started.
func (l *Link) Close() {
	l.closeSocket()
	if l.page != nil {
		_ = unix.Munmap(l.page)
		l.page = nil
	}
}

// WorkerLink is the worker's end of a link, from the descriptors it
// inherited: its socket, then its page if there is one. Programs the
// worker starts inherit neither.
func WorkerLink(fds []int) (*Link, error) {
	if len(fds) == 0 || len(fds) > 2 {
		return nil, fmt.Errorf("a pool worker with %d descriptors for its link", len(fds))
	}
	for _, fd := range fds {
		unix.CloseOnExec(fd)
	}
	l := &Link{sock: ownfd.Adopt(fds[0], "pool worker", false)}
	if len(fds) == 2 {
		page, err := mapPage(fds[1], false)
		_ = unix.Close(fds[1]) // the mapping stays
		if err != nil {
			return nil, fmt.Errorf("a pool worker's page: %w", err)
		}
		l.page = page
	}
	return l, nil
}
