package conn

import (
	"os"
	"time"

	"github.com/mpgo/multiprocessing/internal/mperr"
)

// On Windows, pipes wait for Windows support of Start.

func pair() (*os.File, *os.File, error) { return nil, nil, mperr.ErrUnsupported }

func adopt(fd int) *os.File { return os.NewFile(uintptr(fd), "pipe") }

func closeFile(f *os.File) error { return f.Close() }

func fileFD(f *os.File) int { return int(f.Fd()) }

func readChunk(*os.File, []byte) ([]byte, []int, error) { return nil, nil, mperr.ErrUnsupported }

// FileMin would be the smallest message sent in a memory file.
var FileMin = 0

// files would hold the memory files of large messages.
type files struct{}

func (files) Close() {}

func (c *Conn) sendFile([][]byte) (bool, error) { return false, nil }

func readFile(int, int64) ([]byte, error) { return nil, mperr.ErrUnsupported }

func closeFDs([]int) {}

func writeChunk(*os.File, [][]byte) error { return mperr.ErrUnsupported }

// Poll would wait until the end has data.
func (c *Conn) Poll(time.Duration) (bool, error) { return false, mperr.ErrUnsupported }
