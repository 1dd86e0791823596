package shm

import (
	"bytes"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// An owner identifies a process across time: its pid in the high 32 bits,
// and the low 32 bits of its start time (in clock ticks since boot) in the
// low ones, so that a pid used again by a later process is not taken for
// the one that held a lock.
var self = sync.OnceValue(func() uint64 {
	pid := os.Getpid()
	start, _ := startTime(pid)
	return uint64(pid)<<32 | uint64(uint32(start))
})

// Self is this process's owner word.
func Self() uint64 { return self() }

// Alive reports whether the process with pid still runs. owner is the
// owner word recorded for it, or one of another pid when none is known: then
// a pid used again cannot be told from the process that had it.
func Alive(pid int, owner uint64) bool {
	if pid == os.Getpid() {
		return true
	}
	if err := unix.Kill(pid, 0); err == unix.ESRCH {
		return false
	}
	start, ok := startTime(pid)
	if !ok {
		return false // gone, or a zombie: it holds nothing any more
	}
	return int(owner>>32) != pid || uint32(owner) == uint32(start)
}

// startTime reads the start time of a live process from /proc/PID/stat;
// false for a process that is gone or a zombie.
func startTime(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'. After it: state (field 3) ... starttime (22).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 20 || fields[0][0] == 'Z' || fields[0][0] == 'X' {
		return 0, false
	}
	start, err := strconv.ParseUint(string(fields[19]), 10, 64)
	return start, err == nil
}
