//go:build unix

package multiprocessing

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// forkMethod starts an exec of the program that inherits every descriptor
// open in the parent, at the same number, as Python's fork does, except
// the library's own (other children's bootstrap sockets must not keep their
// lifelines alive). Environment, working directory, umask and resource
// limits pass through exec anyway.
type forkMethod struct{}

func (forkMethod) launch(boot *wire.Bootstrap, files []*os.File) (popen, error) {
	return launchExec(boot, files, forkDescriptors)
}

// forkDescriptors calls start with every open descriptor but the
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
func forkDescriptors(start func(table []int) error) error {
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
