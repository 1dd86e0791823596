package shm

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// An owner word identifies a process across time: its pid in the high 32
// bits, and the low 32 bits of its start time (in clock ticks since boot)
// in the low ones, so that a pid used again by a later process is not
// taken for the one that held a lock. Low bits of 0 mean the start time
// is not known: then only the pid counts.
var self atomic.Uint64

// Self is this process's owner word. A start time that could not be read
// (no /proc, no descriptor left) is not remembered: the next call tries
// again.
func Self() uint64 {
	if s := self.Load(); s != 0 {
		return s
	}
	pid := os.Getpid()
	start, err := startTime(pid)
	if err != nil {
		return uint64(pid) << 32
	}
	s := uint64(pid)<<32 | uint64(uint32(start))
	self.Store(s)
	return s
}

// Alive reports whether the process with pid still runs. owner is the
// owner word recorded for it: when its pid is pid and both start times are
// known, a process that has the pid now but started at another time is not
// the one that had it. Only a sure sign counts as death (no such process,
// a zombie, another start time): a /proc that cannot be read says alive.
func Alive(pid int, owner uint64) bool {
	sameProcess := func(start uint64) bool {
		return int(owner>>32) != pid || uint32(owner) == 0 || uint32(start) == 0 || uint32(owner) == uint32(start)
	}
	if pid == os.Getpid() {
		return sameProcess(Self())
	}
	if err := unix.Kill(pid, 0); err == unix.ESRCH {
		return false
	}
	start, err := startTime(pid)
	switch {
	case errors.Is(err, errZombie), errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ESRCH):
		return false
	case err != nil:
		return true
	}
	return sameProcess(start)
}

var errZombie = errors.New("a zombie")

// startTime reads the start time of a process from /proc/PID/stat;
// errZombie for one that has ended, not yet waited for.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'. After it: state (field 3) ... starttime (22).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name in /proc/PID/stat")
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 20 {
		return 0, errors.New("too few fields in /proc/PID/stat")
	}
	if fields[0][0] == 'Z' || fields[0][0] == 'X' {
		return 0, errZombie
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
}
