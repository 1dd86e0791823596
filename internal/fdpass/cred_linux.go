package fdpass

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// credSpace is room for the sender's credentials, which a socket with
// SO_PASSCRED set receives with every message.
var credSpace = unix.CmsgSpace(unix.SizeofUcred)

// isCredentials reports whether m holds its sender's credentials.
func isCredentials(m *unix.SocketControlMessage) bool {
	return m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_CREDENTIALS
}

// credentialsOnly reports whether oob, a message's control data, is its
// sender's credentials and nothing else (or nothing at all).
func credentialsOnly(oob []byte) bool {
	if len(oob) == 0 {
		return true
	}
	if len(oob) != credSpace {
		return false
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	return h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_CREDENTIALS
}

// senderPid returns the pid in m, its sender's credentials.
func senderPid(m *unix.SocketControlMessage) int {
	cred, err := unix.ParseUnixCredentials(m)
	if err != nil {
		return 0
	}
	return int(cred.Pid)
}

// PassCred makes sock receive, with each message, the credentials of the
// process that sent it, which the kernel fills in: the pid that
// RecvMsgHeldFrom returns for a message that carries descriptors.
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
