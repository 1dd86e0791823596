//go:build unix

package multiprocessing

import (
	"os"

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

// forkDescriptors maps every open descriptor but the library's own to
// itself; the caller holds privateMu, so none of those appears meanwhile.
func forkDescriptors() ([]int, error) {
	open, err := openDescriptors()
	if err != nil {
		return nil, err
	}
	var table []int
	for _, fd := range open {
		if privateFDs[fd] {
			continue
		}
		for len(table) < fd {
			table = append(table, -1)
		}
		table = append(table, fd)
	}
	return table, nil
}
