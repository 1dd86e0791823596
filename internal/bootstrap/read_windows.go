package bootstrap

import (
	"os"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// On Windows, children wait for Windows support of Start: no marker can
// check out.

// CheckFD would check the bootstrap socket.
func CheckFD(int) error { return mperr.ErrUnsupported }

// Open would adopt the bootstrap socket.
func Open(int) *os.File { return nil }

// ReadChild would read a child's bootstrap message.
func ReadChild(*os.File, []byte) (*wire.Bootstrap, error) { return nil, mperr.ErrUnsupported }

// ReadServer would read a forkserver's bootstrap message.
func ReadServer(*os.File, []byte) (*wire.ServerBoot, error) { return nil, mperr.ErrUnsupported }
