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

// pipeSocket is the type of a Pipe's sockets: a stream, as macOS has no
// sequenced-packet Unix sockets; a sender killed mid-message spoils the
// pipe there, as in Python.
const pipeSocket = unix.SOCK_STREAM
