//go:build unix

package multiprocessing

import (
	"io"
	"os"
	"time"

	"github.com/mpgo/multiprocessing/internal/wire"

	"golang.org/x/sys/unix"
)

// newPipe makes the two ends: a pair of sockets that keep each chunk of a
// message whole (see pipeSocket), one-way or not by the ends' flags. They
// are the library's own descriptors, so that a fork child never holds an
// end it was not given and a reader sees the end of the stream when the
// writers it knows of close.
func newPipe(duplex bool) (*Connection, *Connection, error) {
	a, b, err := privatePair(pipeSocket, "pipe")
	if err != nil {
		return nil, nil, err
	}
	return newConn(a, true, duplex), newConn(b, duplex, true), nil
}

// readChunk reads one chunk of a message into buf, which holds
// wire.MaxChunk bytes.
func readChunk(f *os.File, buf []byte) ([]byte, error) {
	if pipeSocket != unix.SOCK_STREAM {
		n, err := f.Read(buf)
		return buf[:n], err
	}
	if _, err := io.ReadFull(f, buf[:wire.ChunkHeader]); err != nil {
		return nil, err
	}
	n, err := wire.ChunkSize(buf)
	if err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(f, buf[wire.ChunkHeader:wire.ChunkHeader+n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf[:wire.ChunkHeader+n], nil
}

// writeChunk writes one chunk, given as its pieces, in one sendmsg: on a
// sequenced-packet socket it arrives whole or not at all.
func writeChunk(f *os.File, bufs [][]byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for len(bufs) > 0 {
		var n int
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.SendmsgBuffers(int(fd), bufs, nil, nil, 0)
			return werr != unix.EAGAIN
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			return err
		}
		// Only a stream takes part of a chunk.
		for n > 0 && n >= len(bufs[0]) {
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
		if n > 0 {
			bufs[0] = bufs[0][n:]
		}
	}
	return nil
}

func adoptConnFile(fd int) *os.File { return adoptPrivate(fd, "pipe") }

func closeConnFile(f *os.File) error { return closePrivateFile(f) }

// pollReadable waits, in poll(2), until f has data or its end.
func pollReadable(f *os.File, timeout time.Duration) (bool, error) {
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	var n int
	var perr error
	cerr := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, perr = unix.Poll(fds, ms)
			if perr != unix.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return false, cerr
	}
	return n > 0, perr
}
