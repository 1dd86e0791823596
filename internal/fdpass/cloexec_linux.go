package fdpass

import "golang.org/x/sys/unix"

// Linux sets close-on-exec as the descriptors arrive.
const recvFlags = unix.MSG_CMSG_CLOEXEC

func closeOnExec(int) {}
