//go:build unix && !linux

package shm

import (
	"os"

	"golang.org/x/sys/unix"
)

// Self is this process's owner word: its pid in the high 32 bits (there is
// no start time to add here).
func Self() uint64 { return uint64(os.Getpid()) << 32 }

// Alive reports whether the process with pid still runs; a pid used again
// by a later process cannot be told from the one that had it here.
func Alive(pid int, _ uint64) bool {
	return pid == os.Getpid() || unix.Kill(pid, 0) != unix.ESRCH
}
