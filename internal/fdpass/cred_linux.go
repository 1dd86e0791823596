package fdpass

import (
	"os"

	"golang.org/x/sys/unix"
)

// credSpace is room for the sender's credentials, which a socket with
// SO_PASSCRED set receives with every message.
var credSpace = unix.CmsgSpace(unix.SizeofUcred)

// senderPid returns the pid in m, if m holds the sender's credentials.
func senderPid(m *unix.SocketControlMessage) (int, bool) {
	if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_CREDENTIALS {
		return 0, false
	}
	cred, err := unix.ParseUnixCredentials(m)
	if err != nil {
		return 0, true
	}
	return int(cred.Pid), true
}

// PassCred makes sock receive, with each message, the credentials of the
// process that sent it, which the kernel fills in: the pid that
// RecvMsgHeldFrom returns.
func PassCred(sock *os.File) error {
	rc, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	return serr
}
