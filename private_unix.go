//go:build unix

package multiprocessing

import (
	"os"

	"github.com/mpgo/multiprocessing/internal/fdpass"

	"golang.org/x/sys/unix"
)

// privatePair makes a connected pair of Unix sockets of type typ for the
// library's own use: close-on-exec, non-blocking behind Go's poller, and
// kept out of what the fork method passes to children.
func privatePair(typ int, name string) (*os.File, *os.File, error) {
	privateMu.Lock()
	defer privateMu.Unlock()
	pair, err := socketpair(typ)
	if err != nil {
		return nil, nil, err
	}
	return adoptLocked(pair[0], name), adoptLocked(pair[1], name), nil
}

// adoptPrivate makes fd, received from another process, one of the
// library's own descriptors.
func adoptPrivate(fd int, name string) *os.File {
	privateMu.Lock()
	defer privateMu.Unlock()
	return adoptLocked(fd, name)
}

func adoptLocked(fd int, name string) *os.File {
	_ = unix.SetNonblock(fd, true)
	privateFDs[fd] = true
	return os.NewFile(uintptr(fd), name)
}

// closePrivateFile closes one of the library's own files, forgetting its
// number before another file can get it.
func closePrivateFile(f *os.File) error {
	privateMu.Lock()
	defer privateMu.Unlock()
	delete(privateFDs, descriptor(f))
	return f.Close()
}

// recvPrivate receives a message and its descriptors from sock with
// privateMu held, and makes the descriptors the library's own before it is
// released: a concurrent fork-method Start never passes one to its child.
// Close those not adopted with closeFDs.
func recvPrivate(sock *os.File, buf []byte) (int, []int, error) {
	return fdpass.RecvMsgHeld(sock, buf, &privateMu, func(fds []int) {
		for _, fd := range fds {
			privateFDs[fd] = true
		}
	})
}

// closeFDs closes descriptors not held by an *os.File, forgetting them as
// the library's own if they were.
func closeFDs(fds []int) {
	privateMu.Lock()
	defer privateMu.Unlock()
	for _, fd := range fds {
		delete(privateFDs, fd)
		unix.Close(fd)
	}
}

// descriptor returns f's descriptor without Fd, which would put f in
// blocking mode for good; -1 once f is closed.
func descriptor(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}
