//go:build unix

// What a child target reads of itself through Unix system calls.

package multiprocessing_test

import (
	"syscall"

	mp "github.com/mpgo/multiprocessing"
)

// methods are the start methods the tables of tests go through.
var methods = []mp.StartMethod{mp.Spawn, mp.Fork, mp.Forkserver}

// quickMethod is the method tests use where any will do: fork; and
// warmMethod the one whose starts cost least: forkserver.
const quickMethod, warmMethod = mp.Fork, mp.Forkserver

// allMethods are the start methods, the default first.
var allMethods = []mp.StartMethod{mp.Fork, mp.Spawn, mp.Forkserver}

// startMethodsSaid is what the helper "start-methods" prints.
const startMethodsSaid = `unset: ""
set spawn: <nil>
set fork: multiprocessing: context has already been set
now: spawn
force fork: <nil>
force unknown: multiprocessing: unknown start method: cannot find context for 'vfork'
force none: <nil>
unset again: ""
fixed by use: fork
set after use: multiprocessing: context has already been set
child method: spawn <nil>
`

// networks are those the tests of Listen and Dial go through.
var networks = []string{"tcp", "unix"}

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
