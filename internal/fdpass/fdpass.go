//go:build unix

// Package fdpass sends and receives descriptors over Unix sockets
// (SCM_RIGHTS), with the data of the message that carries them.
package fdpass

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// MaxFDs is the most descriptors one message may carry.
const MaxFDs = 250

// SendMsg sends data, which must not be empty, and fds in one message over
// sock. On a datagram or sequenced-packet socket the message arrives whole
// or not at all.
func SendMsg(sock *os.File, data []byte, fds ...int) error {
	_, err := SendMsgN(sock, data, fds...)
	return err
}

// SendMsgN is SendMsg that returns how much of data went: on a stream
// socket, a message may go in part (the descriptors go with the first
// part), and the caller writes the rest.
func SendMsgN(sock *os.File, data []byte, fds ...int) (int, error) {
	if len(data) == 0 {
		return 0, errors.New("fdpass: empty message")
	}
	if len(fds) > MaxFDs {
		return 0, fmt.Errorf("fdpass: %d descriptors in one message, at most %d", len(fds), MaxFDs)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	rc, err := sock.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var serr error
	err = rc.Write(func(s uintptr) bool {
		n, serr = unix.SendmsgN(int(s), data, oob, nil, 0)
		return serr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, serr
}

// RecvMsg waits for a message from sock, reads its data into buf and
// returns how many bytes that was and the descriptors it carried,
// close-on-exec, so that none leaks into a child started meanwhile. A
// message longer than buf, or with more than MaxFDs descriptors, is an
// error, and its descriptors are closed. The end of the stream is io.EOF.
func RecvMsg(sock *os.File, buf []byte) (int, []int, error) {
	return RecvMsgHeld(sock, buf, nil, nil)
}

// RecvMsgHeld is RecvMsg with lock held around the receive and mark called,
// still under it, with the descriptors that arrived: a process that lists
// its descriptors under lock never finds one of them unmarked. With a nil
// lock it is RecvMsg.
func RecvMsgHeld(sock *os.File, buf []byte, lock sync.Locker, mark func(fds []int)) (int, []int, error) {
	n, fds, _, err := recvHeld(sock, buf, lock, mark, true)
	return n, fds, err
}

// RecvMsgHeldFrom is RecvMsgHeld that also returns the pid of the process
// that sent a message with descriptors, as the kernel says it, on a socket
// that passes credentials (PassCred); 0 elsewhere, and for messages
// without descriptors (not looked at: most of a pipe's messages).
func RecvMsgHeldFrom(sock *os.File, buf []byte, lock sync.Locker, mark func(fds []int)) (int, []int, int, error) {
	return recvHeld(sock, buf, lock, mark, true)
}

// TryRecvMsgHeld is RecvMsgHeld that does not wait: with no message ready
// it returns unix.EAGAIN. It does not need sock to be in Go's poller.
func TryRecvMsgHeld(sock *os.File, buf []byte, lock sync.Locker, mark func(fds []int)) (int, []int, error) {
	n, fds, _, err := recvHeld(sock, buf, lock, mark, false)
	return n, fds, err
}

// TryRecvMsgFD is TryRecvMsgHeld on a bare descriptor, for a socket that
// is not wrapped in an *os.File: one kept out of Go's poller, say, whose
// file description must stay non-blocking for others that share it.
func TryRecvMsgFD(fd int, buf []byte, lock sync.Locker, mark func(fds []int)) (int, []int, error) {
	oob := oobs.Get().(*[]byte)
	defer oobs.Put(oob)
	if lock != nil {
		lock.Lock()
		defer lock.Unlock()
	}
	n, fds, _, err := recvmsg(fd, buf, *oob, recvFlags|unix.MSG_DONTWAIT)
	if err == nil && mark != nil {
		mark(fds)
	}
	return n, fds, err
}

func recvHeld(sock *os.File, buf []byte, lock sync.Locker, mark func(fds []int), wait bool) (int, []int, int, error) {
	how := recvFlags
	if !wait {
		how |= unix.MSG_DONTWAIT
	}
	rc, err := sock.SyscallConn()
	if err != nil {
		return 0, nil, 0, err
	}
	var (
		n, pid int
		fds    []int
		rerr   error
	)
	oob := oobs.Get().(*[]byte)
	defer oobs.Put(oob)
	err = rc.Read(func(s uintptr) bool {
		if lock != nil {
			lock.Lock()
			defer lock.Unlock()
		}
		n, fds, pid, rerr = recvmsg(int(s), buf, *oob, how)
		if rerr == unix.EAGAIN && wait {
			return false
		}
		if rerr == nil && mark != nil {
			mark(fds)
		}
		return true
	})
	if err != nil {
		return 0, nil, 0, err
	}
	return n, fds, pid, rerr
}

// oobs are buffers for the descriptors of a message, MaxFDs of them: a
// queue's items can come one per receive, and a fresh kilobyte for each
// would keep the garbage collector busy.
var oobs = sync.Pool{New: func() any {
	b := make([]byte, unix.CmsgSpace(4*MaxFDs)+credSpace)
	return &b
}}

func recvmsg(s int, buf, oob []byte, how int) (int, []int, int, error) {
	n, oobn, flags, _, err := unix.Recvmsg(s, buf, oob, how)
	if err != nil {
		return 0, nil, 0, err
	}
	var msgs []unix.SocketControlMessage
	if !credentialsOnly(oob[:oobn]) { // most messages of a pipe: nothing to parse
		if msgs, err = unix.ParseSocketControlMessage(oob[:oobn]); err != nil {
			return 0, nil, 0, fmt.Errorf("fdpass: %w", err)
		}
	}
	var fds []int
	var cred *unix.SocketControlMessage
	for i, m := range msgs {
		if isCredentials(&m) {
			cred = &msgs[i]
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	pid := 0
	if cred != nil && len(fds) > 0 { // only those with descriptors want their sender
		pid = senderPid(cred)
	}
	for _, fd := range fds {
		closeOnExec(fd)
	}
	switch {
	case n == 0 && len(fds) == 0:
		return 0, nil, 0, io.EOF // credentials alone come with the end too
	case flags&unix.MSG_CTRUNC != 0:
		closeAll(fds)
		return 0, nil, 0, fmt.Errorf("fdpass: a message with more than %d descriptors", MaxFDs)
	case flags&unix.MSG_TRUNC != 0:
		closeAll(fds)
		return 0, nil, 0, fmt.Errorf("fdpass: a message longer than %d bytes", len(buf))
	}
	return n, fds, pid, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
