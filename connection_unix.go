//go:build unix

package multiprocessing

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// newPipe makes the two ends: a stream socket pair for duplex, a pipe
// otherwise. They are the library's own descriptors, so that a fork child
// never holds an end it was not given and a reader sees the end of the
// stream when the writers it knows of close.
func newPipe(duplex bool) (*Connection, *Connection, error) {
	if duplex {
		a, b, err := privatePair(unix.SOCK_STREAM, "pipe")
		if err != nil {
			return nil, nil, err
		}
		return newConn(a, true, true), newConn(b, true, true), nil
	}
	privateMu.Lock()
	p, err := cloexecPipe()
	if err != nil {
		privateMu.Unlock()
		return nil, nil, err
	}
	r, w := adoptLocked(p[0], "pipe"), adoptLocked(p[1], "pipe")
	privateMu.Unlock()
	return newConn(r, true, false), newConn(w, false, true), nil
}

func newConn(f *os.File, readable, writable bool) *Connection {
	return &Connection{file: f, fd: descriptor(f), readable: readable, writable: writable}
}

func adoptConnFile(fd int) *os.File { return adoptPrivate(fd, "pipe") }

func closeConnFile(f *os.File) error { return closePrivateFile(f) }

// pollReadable waits, in poll(2), until f has data or its end.
func pollReadable(f *os.File, timeout time.Duration) (bool, error) {
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	var n int
	var perr error
	cerr := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, perr = unix.Poll(fds, ms)
			if perr != unix.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return false, cerr
	}
	return n > 0, perr
}
