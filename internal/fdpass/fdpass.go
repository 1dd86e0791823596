//go:build unix

// Package fdpass sends and receives descriptors over Unix sockets
// (SCM_RIGHTS), one descriptor to a message.
package fdpass

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Send sends fd, with one byte of data so that the message is never empty,
// over the socket sock.
func Send(sock *os.File, fd int) error {
	rc, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(s uintptr) bool {
		serr = unix.Sendmsg(int(s), []byte{0}, unix.UnixRights(fd), nil, 0)
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

// Recv waits for a message from sock and returns the descriptor it
// carries, close-on-exec, so that it never leaks into a child started
// meanwhile.
func Recv(sock *os.File) (int, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return -1, err
	}
	var (
		n, oobn int
		rerr    error
		data    [1]byte
		oob     = make([]byte, unix.CmsgSpace(4*4))
	)
	err = rc.Read(func(s uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(s), data[:], oob, recvFlags)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return -1, err
	}
	if rerr != nil {
		return -1, rerr
	}
	if n == 0 && oobn == 0 {
		return -1, errors.New("fdpass: the socket is closed")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return -1, fmt.Errorf("fdpass: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	for _, fd := range fds {
		closeOnExec(fd)
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("fdpass: a message with %d descriptors, want 1", len(fds))
	}
	return fds[0], nil
}
