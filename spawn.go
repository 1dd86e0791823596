package multiprocessing

import (
	"os"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// spawnMethod starts a fresh exec of the program that inherits only stdout,
// stderr, the bootstrap socket and the descriptors of its arguments, with
// stdin read from /dev/null: Python's spawn.
type spawnMethod struct{}

func (spawnMethod) launch(boot *wire.Bootstrap, files []*os.File) (popen, error) {
	return launchExec(boot, files, spawnDescriptors)
}
