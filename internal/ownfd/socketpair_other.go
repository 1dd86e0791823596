//go:build unix && !darwin

package ownfd

import "golang.org/x/sys/unix"

// CloexecSocketpair makes a connected pair of Unix sockets of type typ,
// close-on-exec from the start so that no concurrent exec can inherit them,
// and not listed: for a process that starts no fork-method children, or for
// descriptors handed to a child and closed at once.
func CloexecSocketpair(typ int) ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
}
