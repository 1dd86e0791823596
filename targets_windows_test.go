package multiprocessing_test

// Windows has no umask, core limit or inodes for the targets to report.

func umaskAndCoreLimit() (int, uint64) { return 0, 0 }

func inode(int) int { return -1 }
