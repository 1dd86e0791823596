//go:build unix && !linux

package fdpass

import "golang.org/x/sys/unix"

// Without MSG_CMSG_CLOEXEC (as on Darwin), a received descriptor is open across
// exec until closeOnExec runs; FreeBSD has the flag, but one code path is
// enough where Linux is the tested platform.
const recvFlags = 0

func closeOnExec(fd int) { unix.CloseOnExec(fd) }
