//go:build unix

// What a child target reads of itself through Unix system calls.

package multiprocessing_test

import "syscall"

// umaskAndCoreLimit reads this process's umask and soft limit of core
// dump size.
func umaskAndCoreLimit() (int, uint64) {
	mask := syscall.Umask(0)
	syscall.Umask(mask)
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_CORE, &lim)
	return mask, uint64(lim.Cur) // (int64 on FreeBSD)
}

func inode(fd int) int {
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil {
		return -1
	}
	return int(st.Ino)
}

func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
