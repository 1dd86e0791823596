//go:build unix && !darwin

package multiprocessing

import "golang.org/x/sys/unix"

// socketpair makes a connected pair of stream sockets, close-on-exec from
// the start so that no concurrent exec can inherit them.
func socketpair() ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}
