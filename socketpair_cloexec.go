//go:build unix && !darwin

package multiprocessing

import "golang.org/x/sys/unix"

// socketpair makes a connected pair of Unix sockets of type typ,
// close-on-exec from the start so that no concurrent exec can inherit them.
func socketpair(typ int) ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
}

// pipeSocket is the type of a Pipe's sockets: sequenced packets, so that a
// chunk of a message is delivered whole or not at all.
const pipeSocket = unix.SOCK_SEQPACKET
