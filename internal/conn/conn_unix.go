//go:build unix

package conn

import (
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/bulk"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// pair makes the two ends of a pipe. Each end that receives (the first,
// and the second if duplex) gets with every message its sender's pid as
// the kernel says it: the only pid a reader trusts to copy a large message
// straight from its sender's memory (see bulk.Read). (An end that passes
// credentials takes an abstract socket name when it first sends; one that
// only sends need not.)
func pair(duplex bool) (*os.File, *os.File, error) {
	a, b, err := ownfd.Socketpair(socketType, "pipe", true, true)
	if err != nil {
		return nil, nil, err
	}
	receivers := []*os.File{a}
	if duplex {
		receivers = append(receivers, b)
	}
	for _, f := range receivers {
		if err := ownfd.PassCred(f); err != nil {
			ownfd.Close(a)
			ownfd.Close(b)
			return nil, nil, err
		}
	}
	return a, b, nil
}

func adopt(fd int) *os.File { return ownfd.Adopt(fd, "pipe", true) }

func closeFile(f *os.File) error { return ownfd.Close(f) }

func fileFD(f *os.File) int { return ownfd.FD(f) }

// files are the memory files in which a Conn sends large messages.
type files = bulk.Writer

// FileMin is the smallest message that travels in a memory file rather
// than in chunks: below it, the file costs more system calls than the
// chunks it saves. (A variable for the tests, which send large messages
// in chunks too.)
var FileMin = 128 << 10

// sendFile sends the message made of parts in a memory file, and reports
// whether it did: on a sequenced-packet socket, when the message is large
// and a memory file can be had.
func (c *Conn) sendFile(parts [][]byte) (bool, error) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	if socketType == unix.SOCK_STREAM || size < FileMin || size > wire.MaxFrame {
		return false, nil
	}
	// Only into the files kept: with every one of them unread, chunks,
	// which wait for the reader, as a pipe does.
	f, fill, err := c.files.StreamKept(parts...)
	if err != nil {
		return false, nil // chunks, also where there are no memory files
	}
	// The file goes first and the message after it: the reader copies
	// each piece out as it lands. Other writers' messages may follow the
	// file meanwhile; the reader takes them once this one is in.
	c.wmu.Lock()
	err = writeChunkWith(c.file, [][]byte{wire.FileChunk(c.writer, size)}, unix.UnixRights(ownfd.FD(f)))
	c.wmu.Unlock()
	fill(err == nil)
	return true, err
}

// readChunk reads one chunk of a message into buf, which holds
// wire.MaxChunk bytes, with the descriptors that came on it and the pid
// of its sender, as the kernel says it (0 where it does not).
func readChunk(f *os.File, buf []byte) ([]byte, []int, int, error) {
	if socketType != unix.SOCK_STREAM {
		n, fds, pid, err := ownfd.RecvFrom(f, buf)
		return buf[:n], fds, pid, err
	}
	if _, err := io.ReadFull(f, buf[:wire.ChunkHeader]); err != nil {
		return nil, nil, 0, err
	}
	n, err := wire.ChunkSize(buf)
	if err != nil {
		return nil, nil, 0, err
	}
	if _, err := io.ReadFull(f, buf[wire.ChunkHeader:wire.ChunkHeader+n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, 0, err
	}
	return buf[:wire.ChunkHeader+n], nil, 0, nil
}

func readFile(fd int, size int64, from int, stop func() bool) ([]byte, error) {
	return bulk.Read(fd, size, from, stop)
}

func readFileInto(fd int, size int64, from int, stop func() bool, head, rest []byte) error {
	return bulk.ReadInto(fd, size, from, stop, head, rest)
}

// errWriterDied is a message's error when its sender died while it copied
// the message into its memory file.
var errWriterDied = bulk.ErrWriterDied

func closeFDs(fds []int) { ownfd.CloseFDs(fds) }

// writeChunk writes one chunk, given as its pieces, in one sendmsg: on a
// sequenced-packet socket it arrives whole or not at all.
func writeChunk(f *os.File, bufs [][]byte) error { return writeChunkWith(f, bufs, nil) }

// writeChunkWith is writeChunk with oob, descriptors, on its first byte.
func writeChunkWith(f *os.File, bufs [][]byte, oob []byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for len(bufs) > 0 {
		var n int
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.SendmsgBuffers(int(fd), bufs, oob, nil, 0)
			return werr != unix.EAGAIN
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			return err
		}
		oob = nil // sent with the first byte
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
