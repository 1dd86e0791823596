//go:build unix && !darwin

package multiprocessing

import "golang.org/x/sys/unix"

// socketpair makes a connected pair of Unix sockets of type typ,
// close-on-exec from the start so that no concurrent exec can inherit them.
func socketpair(typ int) ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
}

// cloexecPipe makes a pipe, close-on-exec from the start.
func cloexecPipe() ([2]int, error) {
	var p [2]int
	err := unix.Pipe2(p[:], unix.O_CLOEXEC)
	return p, err
}
