package multiprocessing

import (
	"os"
	"time"
)

func newPipe(bool) (*Connection, *Connection, error) { return nil, nil, ErrUnsupported }

func adoptConnFile(fd int) *os.File { return os.NewFile(uintptr(fd), "pipe") }

func closeConnFile(f *os.File) error { return f.Close() }

func pollReadable(*os.File, time.Duration) (bool, error) { return false, ErrUnsupported }

func readChunk(*os.File, []byte) ([]byte, error) { return nil, ErrUnsupported }

func writeChunk(*os.File, [][]byte) error { return ErrUnsupported }

func descriptor(f *os.File) int { return int(f.Fd()) }
