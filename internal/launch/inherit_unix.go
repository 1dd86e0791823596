//go:build unix

package launch

import (
	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
)

// inheritAll calls start with every open descriptor but the
// library's own mapped to its number in the child; none of those appears
// until start has returned.
//
// The child gets duplicates, taken now above every listed number, not the
// descriptors themselves: another goroutine may close one of those before
// the exec (a pidfd of a child just waited for, a file of the user's), and
// its number may then be reused by the exec's own close-on-exec error pipe.
// Mapped to itself, that number would lose close-on-exec in the child, the
// error pipe would stay open there, and the exec would not return until
// the child exited. A descriptor closed before its duplicate is taken is
// simply not inherited.
func inheritAll(start func(table []int) error) error {
	return ownfd.Inherit(func(open []int) error {
		floor := 0
		if len(open) > 0 {
			floor = open[len(open)-1] + 1
		}
		var table, dups []int
		defer func() {
			for _, fd := range dups {
				unix.Close(fd)
			}
		}()
		for _, fd := range open {
			dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, floor)
			if err != nil {
				continue // closed since it was listed
			}
			dups = append(dups, dup)
			for len(table) < fd {
				table = append(table, -1)
			}
			table = append(table, dup)
		}
		return start(table)
	})
}
