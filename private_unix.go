//go:build unix

package multiprocessing

import (
	"os"
	"sync"

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

func adoptLocked(fd int, name string) *os.File { return adoptMode(fd, name, true) }

// adoptQuiet is adoptPrivate for a descriptor that this process does not
// wait on while the process at the other end runs: the ends of a
// forkserver child's sockets, read once the child has ended (or, if the
// server died, in a blocking read that holds a thread). It stays in
// blocking mode, which keeps it out of Go's poller: otherwise each read and
// write of the child at the other end wakes a thread of this process,
// which on a small machine takes the processor from the child while it
// starts.
func adoptQuiet(fd int, name string) *os.File {
	privateMu.Lock()
	defer privateMu.Unlock()
	return adoptMode(fd, name, false)
}

func adoptMode(fd int, name string, nonblocking bool) *os.File {
	_ = unix.SetNonblock(fd, nonblocking)
	recvMu.Lock()
	delete(receivedFDs, fd)
	recvMu.Unlock()
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

// Descriptors received from other processes and not yet adopted or closed.
// They are listed under recvMu as they arrive, not under privateMu: a
// private file's Close, under privateMu, waits for a read in progress on
// it, and that read must not wait for privateMu. The lock order is
// privateMu, then recvMu.
var (
	recvMu      sync.Mutex
	receivedFDs = map[int]bool{}
)

// recvPrivate receives a message and its descriptors from sock, listing
// the descriptors in receivedFDs before any concurrent fork-method Start
// can see them, so that none is passed to its child. Adopt them with
// adoptPrivate, or close them with closeFDs.
func recvPrivate(sock *os.File, buf []byte) (int, []int, error) {
	return fdpass.RecvMsgHeld(sock, buf, &recvMu, markReceived)
}

// tryRecvPrivate is recvPrivate that does not wait: unix.EAGAIN when no
// message is ready.
func tryRecvPrivate(sock *os.File, buf []byte) (int, []int, error) {
	return fdpass.TryRecvMsgHeld(sock, buf, &recvMu, markReceived)
}

// tryRecvPrivateFD is tryRecvPrivate on a bare descriptor.
func tryRecvPrivateFD(fd int, buf []byte) (int, []int, error) {
	return fdpass.TryRecvMsgFD(fd, buf, &recvMu, markReceived)
}

// markReceived lists fds as received. The caller holds recvMu.
func markReceived(fds []int) {
	for _, fd := range fds {
		receivedFDs[fd] = true
	}
}

// ownedLocked reports whether fd is one of the library's own, adopted or
// received. The caller holds privateMu and recvMu.
func ownedLocked(fd int) bool { return privateFDs[fd] || receivedFDs[fd] }

// closeFDs closes descriptors not held by an *os.File, forgetting them as
// the library's own if they were.
func closeFDs(fds []int) {
	privateMu.Lock()
	defer privateMu.Unlock()
	recvMu.Lock()
	defer recvMu.Unlock()
	for _, fd := range fds {
		delete(privateFDs, fd)
		delete(receivedFDs, fd)
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
