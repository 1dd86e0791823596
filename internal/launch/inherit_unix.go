//go:build unix

package launch

import (
	"slices"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
)

// inheritAll calls start with every open descriptor but the
// library's own mapped to its number in the child; none of those appears
// until start has returned.
//
// The child gets duplicates, not the descriptors themselves: another
// goroutine may close one of those before the exec (a pidfd of a child
// just waited for, a file of the user's), and its number may then be
// reused by the exec's own close-on-exec error pipe. Mapped to itself,
// that number would lose close-on-exec in the child, the error pipe would
// stay open there, and the exec would not return until the child exited.
// A descriptor closed before its duplicate is taken is simply not
// inherited: when a duplicate takes the number of a listed descriptor, that
// one was closed since it was listed, and is skipped.
//
// The duplicates take the lowest free numbers, not numbers above every
// listed one: a process with one high descriptor open (a shell's, say 251)
// would otherwise grow its descriptor table past 64 at its first fork
// start, and Linux grows a table that several threads share only after an
// RCU grace period (expand_fdtable): 10 to 20 ms, once. syscall's ForkExec
// maps any permutation of the table in the child.
func inheritAll(start func(table []int) error) error {
	return ownfd.Inherit(func(open []int) error {
		var table, dups []int
		defer func() {
			for _, fd := range dups {
				unix.Close(fd)
			}
		}()
		for _, fd := range open {
			if slices.Contains(dups, fd) {
				continue // closed since it was listed, and its number reused here
			}
			dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
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
