//go:build unix

package conn

import (
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

func pair() (*os.File, *os.File, error) { return ownfd.Socketpair(socketType, "pipe", true, true) }

func adopt(fd int) *os.File { return ownfd.Adopt(fd, "pipe", true) }

func closeFile(f *os.File) error { return ownfd.Close(f) }

func fileFD(f *os.File) int { return ownfd.FD(f) }

// readChunk reads one chunk of a message into buf, which holds
// wire.MaxChunk bytes.
func readChunk(f *os.File, buf []byte) ([]byte, error) {
	if socketType != unix.SOCK_STREAM {
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

// Poll waits, in poll(2), until the end has data or its end of stream, up
// to timeout; below zero for ever, zero not at all.
func (c *Conn) Poll(timeout time.Duration) (bool, error) {
	rc, err := c.file.SyscallConn()
	if err != nil {
		return false, err
	}
	var n int
	var perr error
	cerr := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, perr = unix.Poll(fds, PollMillis(timeout))
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

// PollMillis is timeout as poll(2) and epoll_wait take it: milliseconds,
// rounded up so that a wait never ends early; -1 for a timeout below zero.
func PollMillis(timeout time.Duration) int {
	if timeout < 0 {
		return -1
	}
	return int((timeout + time.Millisecond - 1) / time.Millisecond)
}
