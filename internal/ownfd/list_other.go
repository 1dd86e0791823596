//go:build unix && !linux

package ownfd

import "golang.org/x/sys/unix"

// maxProbe bounds the descriptors openDescriptors probes, where /dev/fd may
// show only 0, 1 and 2 (FreeBSD without fdescfs).
const maxProbe = 4096

// openDescriptors lists the descriptors open in this process, in order.
func openDescriptors() ([]int, error) {
	var lim unix.Rlimit
	limit := int64(maxProbe)
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		// int64 on FreeBSD, uint64 on Darwin, where "unlimited" wraps negative.
		if cur := int64(lim.Cur); cur > 0 && cur < limit {
			limit = cur
		}
	}
	var fds []int
	for fd := range int(limit) {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			fds = append(fds, fd)
		}
	}
	return fds, nil
}
