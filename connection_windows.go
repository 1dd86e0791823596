package multiprocessing

import (
	"os"
	"time"
)

func newPipe(bool) (*Connection, *Connection, error) { return nil, nil, ErrUnsupported }

func adoptConnFile(fd int) *os.File { return os.NewFile(uintptr(fd), "pipe") }

func closeConnFile(f *os.File) error { return f.Close() }

func pollReadable(*os.File, time.Duration) (bool, error) { return false, ErrUnsupported }
