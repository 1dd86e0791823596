//go:build unix

package multiprocessing

import (
	"os"

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

// descriptor returns f's descriptor without Fd, which would put f in
// blocking mode for good; -1 once f is closed.
func descriptor(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}
