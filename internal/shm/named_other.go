//go:build !linux

package shm

import (
	"fmt"
	"runtime"

	"github.com/mpgo/multiprocessing/internal/mperr"
)

// Named blocks are Linux's /dev/shm files for now. macOS and FreeBSD keep
// their names inside the kernel, behind a shm_open that x/sys/unix does not
// wrap, and Windows's named file mappings vanish with their last handle,
// which is another contract.
var errNoSharedMemory = fmt.Errorf("%w: SharedMemory on %s", mperr.ErrUnsupported, runtime.GOOS)

func CreateNamed(string, int) ([]byte, error) { return nil, errNoSharedMemory }

func OpenNamed(string) ([]byte, error) { return nil, errNoSharedMemory }

// UnmapNamed and UnlinkNamed are never reached with a block here: no
// SharedMemory but the zero one, which has neither, can exist.
func UnmapNamed(string, []byte) error { return errNoSharedMemory }

func UnlinkNamed(string) error { return errNoSharedMemory }
