package multiprocessing

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// socketpair makes a connected pair of Unix sockets of type typ,
// close-on-exec. Darwin
// has no SOCK_CLOEXEC, so ForkLock keeps execs out until the flag is set,
// as the syscall package does.
func socketpair(typ int) ([2]int, error) {
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

// cloexecPipe makes a pipe, close-on-exec, under ForkLock as above.
func cloexecPipe() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		return p, err
	}
	unix.CloseOnExec(p[0])
	unix.CloseOnExec(p[1])
	return p, nil
}
