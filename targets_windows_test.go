package multiprocessing_test

import (
	"golang.org/x/sys/windows"

	mp "github.com/mpgo/multiprocessing"
)

// methods are the start methods the tables of tests go through: Windows
// has spawn only.
var methods = []mp.StartMethod{mp.Spawn}

// quickMethod is the method tests use where any will do, and warmMethod
// the one whose starts cost least: spawn, here.
const quickMethod, warmMethod = mp.Spawn, mp.Spawn

// allMethods are the start methods, the default first.
var allMethods = []mp.StartMethod{mp.Spawn}

// startMethodsSaid is what the helper "start-methods" prints: Windows has
// no fork, and spawn is its default.
const startMethodsSaid = `unset: ""
set spawn: <nil>
set fork: multiprocessing: context has already been set
now: spawn
force fork: multiprocessing: unknown start method: cannot find context for 'fork'
force unknown: multiprocessing: unknown start method: cannot find context for 'vfork'
force none: <nil>
unset again: ""
fixed by use: spawn
set after use: multiprocessing: context has already been set
child method: spawn <nil>
`

// networks are those the tests of Listen and Dial go through: Wine has
// no Unix sockets.
var networks = []string{"tcp"}

// Windows has no umask, core limit or inodes for the targets to report.

func umaskAndCoreLimit() (int, uint64) { return 0, 0 }

func inode(int) int { return -1 }

// killPid ends process pid as Process.Kill does, so that its exit code
// reads as death by SIGKILL.
func killPid(pid int) error {
	h, err := windows.OpenProcess(windows.PROCESS_TERMINATE, false, uint32(pid))
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	return windows.TerminateProcess(h, 0x10000+9)
}

// sharedFutexWaiters is Linux's: the tests that ask skip here, where
// locks are not supported yet.
func sharedFutexWaiters(int) int { return 1 }

// gone reports whether process pid has ended.
func gone(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return true
	}
	defer windows.CloseHandle(h)
	var code uint32
	return windows.GetExitCodeProcess(h, &code) != nil || code != 259 // STILL_ACTIVE
}
