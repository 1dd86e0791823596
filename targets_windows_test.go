package multiprocessing_test

import "os"

// Windows has no umask, core limit or inodes for the targets to report.

func umaskAndCoreLimit() (int, uint64) { return 0, 0 }

func inode(int) int { return -1 }

func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// sharedFutexWaiters is Linux's: the tests that ask skip here, where
// locks are not supported yet.
func sharedFutexWaiters(int) int { return 1 }
