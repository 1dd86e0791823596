package multiprocessing

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// socketpair makes a connected pair of stream sockets, close-on-exec. Darwin
// has no SOCK_CLOEXEC, so ForkLock keeps execs out until the flag is set,
// as the syscall package does.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return pair, err
	}
	unix.CloseOnExec(pair[0])
	unix.CloseOnExec(pair[1])
	return pair, nil
}
