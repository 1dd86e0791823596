//go:build unix

// Package ownfd keeps the registry of the library's own descriptors: the
// sockets, memory files, eventfds and epolls it makes for itself, and the
// descriptors other processes send it. It holds one invariant: a child
// started by the fork method, which inherits every other open descriptor,
// never inherits one of these, because nothing here appears or goes unlisted
// while Inherit lists the rest.
//
// In a process that may start fork-method children, every descriptor the
// library makes for itself is made here, or adopted here at once, and
// closed here (a forkserver, which starts none, makes some of its own
// directly). The registry's locks are leaves: no callback of a caller runs
// under them but Inherit's.
package ownfd

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/fdpass"
)

// The registry. mu is held while a descriptor is made and listed, closed
// and forgotten, or while Inherit lists the others. Descriptors received
// from other processes are listed under recvMu as they arrive, not under
// mu: Close, under mu, waits for a read in progress on its file, and that
// read must not wait for mu. The lock order is mu, then recvMu.
var (
	mu       sync.Mutex
	own      = map[int]bool{}
	recvMu   sync.Mutex
	received = map[int]bool{}
	devNull  = -1
)

// Socketpair makes a connected pair of Unix sockets of type typ, named
// name, close-on-exec. An end that is pollable waits in Go's poller
// (non-blocking); one that is not stays in blocking mode, for a descriptor
// this process only hands on or reads in a thread of its own.
func Socketpair(typ int, name string, pollA, pollB bool) (a, b *os.File, err error) {
	mu.Lock()
	defer mu.Unlock()
	pair, err := CloexecSocketpair(typ)
	if err != nil {
		return nil, nil, err
	}
	return adoptLocked(pair[0], name, pollA), adoptLocked(pair[1], name, pollB), nil
}

// Memfd makes an anonymous memory file, in blocking mode (it is mapped or
// sent, never waited on). Where there are none, it returns ErrUnsupported.
func Memfd(name string) (*os.File, error) {
	mu.Lock()
	defer mu.Unlock()
	fd, err := memfd(name)
	if err != nil {
		return nil, err
	}
	return adoptLocked(fd, name, false), nil
}

// Dup returns a close-on-exec duplicate of f's descriptor, listed as the
// library's own; close it with CloseFDs. f keeps its mode. The duplicate
// is taken while f is held, so a concurrent Close of f cannot make it a
// duplicate of another file.
func Dup(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	mu.Lock()
	defer mu.Unlock()
	dup := -1
	cerr := rc.Control(func(fd uintptr) {
		dup, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if cerr != nil {
		return -1, cerr
	}
	if err != nil {
		return -1, err
	}
	own[dup] = true
	return dup, nil
}

// DevNull returns a descriptor of /dev/null, open for reading, made once
// and kept: a spawned child's stdin.
func DevNull() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if devNull < 0 {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		devNull = fd
		own[fd] = true
	}
	return devNull, nil
}

// Adopt makes fd, received from another process with Recv or TryRecv, or
// inherited, one of the library's own files, pollable or in blocking mode
// as Socketpair's ends are.
func Adopt(fd int, name string, pollable bool) *os.File {
	mu.Lock()
	defer mu.Unlock()
	return adoptLocked(fd, name, pollable)
}

func adoptLocked(fd int, name string, pollable bool) *os.File {
	_ = unix.SetNonblock(fd, pollable)
	recvMu.Lock()
	delete(received, fd)
	recvMu.Unlock()
	own[fd] = true
	return os.NewFile(uintptr(fd), name)
}

// Close closes one of the library's own files, forgetting its number before
// another file can get it. Closing a file of another kind, or twice, is as
// f.Close.
func Close(f *os.File) error {
	mu.Lock()
	defer mu.Unlock()
	delete(own, FD(f))
	return f.Close()
}

// CloseFDs closes descriptors that no *os.File holds, received or made by
// Dup, forgetting them as the library's own.
func CloseFDs(fds []int) {
	mu.Lock()
	defer mu.Unlock()
	recvMu.Lock()
	defer recvMu.Unlock()
	for _, fd := range fds {
		delete(own, fd)
		delete(received, fd)
		unix.Close(fd)
	}
}

// Recv waits for a message from sock and returns its data's length and the
// descriptors it carried, listed as the library's own before any
// concurrent Inherit can see them. Adopt each, or close them with CloseFDs.
func Recv(sock *os.File, buf []byte) (int, []int, error) {
	return fdpass.RecvMsgHeld(sock, buf, &recvMu, markReceived)
}

// RecvFrom is Recv that also returns the pid of the message's sender, as
// the kernel says it, on a socket made to pass credentials (PassCred); 0
// elsewhere.
func RecvFrom(sock *os.File, buf []byte) (int, []int, int, error) {
	return fdpass.RecvMsgHeldFrom(sock, buf, &recvMu, markReceived)
}

// PassCred makes sock receive its senders' credentials (Linux only).
func PassCred(sock *os.File) error { return fdpass.PassCred(sock) }

// TryRecv is Recv that does not wait: unix.EAGAIN when no message is ready.
func TryRecv(sock *os.File, buf []byte) (int, []int, error) {
	return fdpass.TryRecvMsgHeld(sock, buf, &recvMu, markReceived)
}

// TryRecvFD is TryRecv on a bare descriptor.
func TryRecvFD(fd int, buf []byte) (int, []int, error) {
	return fdpass.TryRecvMsgFD(fd, buf, &recvMu, markReceived)
}

// markReceived lists fds as received. The caller holds recvMu.
func markReceived(fds []int) {
	for _, fd := range fds {
		received[fd] = true
	}
}

// Inherit lists the descriptors open in this process that are not the
// library's own, in order, and calls fn with them; until fn returns, no
// descriptor of the library's is made or closed, so none can be mistaken
// for the user's. Descriptors that arrive from other processes meanwhile
// are not listed, and are close-on-exec from their receipt (on Linux; on
// systems without MSG_CMSG_CLOEXEC, from just after it). fn must not
// call into this package. It is the fork method's, which passes those
// descriptors to its child.
func Inherit(fn func(others []int) error) error {
	mu.Lock()
	defer mu.Unlock()
	others, err := othersLocked()
	if err != nil {
		return err
	}
	return fn(others)
}

// othersLocked lists the open descriptors that are not the library's own.
// The caller holds mu; recvMu is held only while the list is taken, so
// that receives in progress do not wait for fn's exec.
func othersLocked() ([]int, error) {
	recvMu.Lock()
	defer recvMu.Unlock()
	open, err := openDescriptors()
	if err != nil {
		return nil, err
	}
	others := open[:0]
	for _, fd := range open {
		if !own[fd] && !received[fd] {
			others = append(others, fd)
		}
	}
	return others, nil
}

// FD returns f's descriptor without Fd, which would put f in blocking mode
// for good; -1 once f is closed.
func FD(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}
