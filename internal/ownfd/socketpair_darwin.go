package ownfd

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// CloexecSocketpair makes a connected pair of Unix sockets of type typ,
// close-on-exec, and not listed: for a process that starts no fork-method
// children, or for descriptors handed to a child and closed at once.
// Darwin has no SOCK_CLOEXEC, so ForkLock keeps execs out until the flag
// is set, as the syscall package does.
func CloexecSocketpair(typ int) ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	pair, err := unix.Socketpair(unix.AF_UNIX, typ, 0)
	if err != nil {
		return pair, err
	}
	unix.CloseOnExec(pair[0])
	unix.CloseOnExec(pair[1])
	return pair, nil
}
