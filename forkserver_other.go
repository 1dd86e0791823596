//go:build !linux

package multiprocessing

import (
	"errors"
	"os"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// The forkserver needs pidfds and sequenced-packet sockets; it is built
// for Linux only, so far. Elsewhere its context exists and its Start
// returns ErrUnsupported.

var forkserverLauncher launcher = unsupportedMethod(Forkserver)

func serveForkserver(*os.File, *wire.ServerBoot) int {
	refuse("this system has no forkserver")
	return 2
}

func readHello(*os.File, []byte) error { return errors.New("this system has no forkserver") }

func runWarm(*os.File, *os.File) int { return 2 }
