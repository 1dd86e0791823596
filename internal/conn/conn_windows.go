package conn

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// On Windows a pipe is a named pipe in message mode, both ways, made for
// this pair alone under a random name: each chunk is one message, read
// whole, as a sequenced packet on Linux; writes of several processes on
// one end never mix. Its handles are overlapped, so that one goroutine
// may read while another writes (Go's I/O completion port); a child gets
// an end by inheriting its handle.

func pair(bool) (*os.File, *os.File, error) { return PipePair(true) }

// PipePair makes a duplex named pipe for two ends alone, overlapped, in
// message mode or as a byte stream. Its handles are not inheritable: a
// start passes each on by name (an explicit handle list).
func PipePair(messages bool) (*os.File, *os.File, error) {
	random := make([]byte, 16)
	rand.Read(random)
	name, err := windows.UTF16PtrFromString(`\\.\pipe\mpgo-` + hex.EncodeToString(random))
	if err != nil {
		return nil, nil, err
	}
	kind, mode := uint32(windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE), uint32(windows.PIPE_READMODE_BYTE)
	if messages {
		kind, mode = windows.PIPE_TYPE_MESSAGE|windows.PIPE_READMODE_MESSAGE, windows.PIPE_READMODE_MESSAGE
	}
	size := uint32(wire.MaxChunk + 64)
	server, err := windows.CreateNamedPipe(name,
		windows.PIPE_ACCESS_DUPLEX|windows.FILE_FLAG_OVERLAPPED|windows.FILE_FLAG_FIRST_PIPE_INSTANCE,
		kind|windows.PIPE_WAIT|windows.PIPE_REJECT_REMOTE_CLIENTS,
		1, size, size, 0, nil)
	if err != nil {
		return nil, nil, err
	}
	client, err := windows.CreateFile(name, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_OVERLAPPED, 0)
	if err != nil {
		windows.CloseHandle(server)
		return nil, nil, err
	}
	if err := windows.SetNamedPipeHandleState(client, &mode, nil, nil); err != nil {
		windows.CloseHandle(server)
		windows.CloseHandle(client)
		return nil, nil, err
	}
	return os.NewFile(uintptr(server), "pipe"), os.NewFile(uintptr(client), "pipe"), nil
}

func adopt(fd int) *os.File { return os.NewFile(uintptr(fd), "pipe") }

func closeFile(f *os.File) error { return f.Close() }

// fileFD is f's handle, taken without Fd, which would take f out of Go's
// completion port.
func fileFD(f *os.File) int {
	h := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(u uintptr) { h = int(u) })
	}
	return h
}

// readChunk reads one message: a chunk (no descriptors, no sender).
func readChunk(f *os.File, buf []byte) ([]byte, []int, int, error) {
	n, err := f.Read(buf)
	if err != nil {
		return nil, nil, 0, err
	}
	return buf[:n], nil, 0, nil
}

var procPeekNamedPipe = windows.NewLazySystemDLL("kernel32.dll").NewProc("PeekNamedPipe")

// peekNamedPipe returns how many bytes wait in the pipe h.
func peekNamedPipe(h windows.Handle) (uint32, error) {
	var avail uint32
	r, _, err := procPeekNamedPipe.Call(uintptr(h), 0, 0, 0, uintptr(unsafe.Pointer(&avail)), 0)
	if r == 0 {
		return 0, err
	}
	return avail, nil
}

// FileMin is the smallest message sent in a memory file: none are, here.
var FileMin = 0

// files would hold the memory files of large messages.
type files struct{}

func (files) Close() {}

func (c *Conn) sendFile([][]byte) (bool, error) { return false, nil }

func readFile(int, int64, int, func() bool) ([]byte, error) { return nil, mperr.ErrUnsupported }

func readFileInto(int, int64, int, func() bool, []byte, []byte) error {
	return mperr.ErrUnsupported
}

// errWriterDied: no memory files here, so no writer dies filling one.
var errWriterDied = errors.New("unused")

func closeFDs([]int) {}

// writeChunk writes one chunk as one message.
func writeChunk(f *os.File, bufs [][]byte) error {
	var msg []byte
	for _, b := range bufs {
		msg = append(msg, b...)
	}
	_, err := f.Write(msg)
	return err
}

// Poll waits until the end has a message, or its peer is gone, for at
// most timeout (below zero: for ever), asking the pipe (PeekNamedPipe)
// after waits that grow from 0.1 to 10 ms: Windows has no readiness wait
// for a pipe.
func (c *Conn) Poll(timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 10*time.Millisecond) {
		if c.closed.Load() {
			return false, os.ErrClosed // its handle's number may be another's now
		}
		avail, err := peekNamedPipe(windows.Handle(c.fd))
		switch {
		case errors.Is(err, syscall.ERROR_BROKEN_PIPE):
			return true, nil // the end of the stream is ready to be read
		case err != nil:
			return false, err
		case avail > 0:
			return true, nil
		case timeout >= 0 && !time.Now().Before(deadline):
			return false, nil
		}
		time.Sleep(wait)
	}
}
