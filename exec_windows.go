package multiprocessing

import (
	"os"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// Starting children on Windows needs the bootstrap channel built from
// inherited pipe handles instead of a socketpair; until then Start says so.
func launchExec(*wire.Bootstrap, []*os.File, func() ([]int, func(), error)) (popen, error) {
	return nil, &unsupportedError{"spawn (on Windows)"}
}

func spawnDescriptors() ([]int, func(), error) { return nil, nil, ErrUnsupported }
