// Package conn is the transport of a Connection: each message is cut into
// chunks (wire.Chunks) that are written whole, one sendmsg each, and put
// together again at the reader (wire.Assembler), so that messages of
// several writers sharing an end never mix and a writer killed in the
// middle of one loses only that message.
//
// On Linux and FreeBSD the sockets are sequenced packets, where a chunk
// arrives whole or not at all. macOS has none, so there they are a stream,
// where a writer cut short leaves half a chunk that spoils the rest.
package conn

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// Conn is one end of a pipe. One goroutine may Send while another Recvs.
type Conn struct {
	file   *os.File
	fd     int
	writer uint64 // this end's name in its chunks, one per process
	rmu    sync.Mutex
	in     []byte         // a chunk's buffer, under rmu
	asm    wire.Assembler // under rmu
	wmu    sync.Mutex
	files  files       // for large messages
	closed atomic.Bool // Close has begun
}

func newConn(f *os.File) *Conn {
	return &Conn{file: f, fd: fileFD(f), writer: rand.Uint64()}
}

// Pair returns the two ends of a new pipe: the library's own descriptors,
// so that a fork-method child never holds an end it was not given, and a
// reader sees the end of the stream once the writers it knows of close.
// The first end receives; the second too if duplex.
func Pair(duplex bool) (*Conn, *Conn, error) {
	a, b, err := pair(duplex)
	if err != nil {
		return nil, nil, err
	}
	return newConn(a), newConn(b), nil
}

// Adopt makes fd, an end received from another process, a Conn.
func Adopt(fd int) *Conn { return newConn(adopt(fd)) }

// File returns the end's file, to pass it to a child.
func (c *Conn) File() *os.File { return c.file }

// FD returns the end's descriptor, as it was before any Close.
func (c *Conn) FD() int { return c.fd }

// Send sends one message, made of parts.
func (c *Conn) Send(parts ...[]byte) error {
	if sent, err := c.sendFile(parts); sent {
		return err
	}
	chunks, err := wire.Chunks(c.writer, parts...)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for bufs := range chunks {
		if err := writeChunk(c.file, bufs); err != nil {
			return err
		}
	}
	return nil
}

// Recv waits for the next whole message. It returns io.EOF at the end of
// the stream, unless messages were cut short by writers that died while
// sending; an error that matches os.ErrClosed once the end is closed.
func (c *Conn) Recv() ([]byte, error) {
	_, msg, err := c.recvInto(nil, nil, false)
	return msg, err
}

// RecvInto is Recv that puts the message's first len(head) bytes into
// head and the rest into buf, when they fit: n is the length of the rest.
// A message whose rest does not fit buf comes back whole in msg (head and
// buf untouched); one shorter than head is an error. A message in a
// memory file goes from the file straight into head and buf.
func (c *Conn) RecvInto(head, buf []byte) (n int, msg []byte, err error) {
	return c.recvInto(head, buf, true)
}

func (c *Conn) recvInto(head, buf []byte, into bool) (int, []byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.in == nil {
		c.in = make([]byte, wire.MaxChunk)
	}
	for {
		chunk, fds, from, err := readChunk(c.file, c.in)
		switch {
		case err == io.EOF:
			if n := c.asm.CutShort(); n > 0 {
				return 0, nil, &CutShortError{n}
			}
			return 0, nil, io.EOF
		case err != nil && c.closed.Load():
			return 0, nil, os.ErrClosed
		case err != nil:
			return 0, nil, err
		case wire.IsFileChunk(chunk):
			n, msg, err := c.readFile(chunk, fds, from, head, buf, into)
			if errors.Is(err, errWriterDied) {
				c.asm.Cut() // not a message: reported at the end
				continue
			}
			return n, msg, err
		case len(fds) > 0:
			closeFDs(fds)
			return 0, nil, fmt.Errorf("a chunk with %d descriptors", len(fds))
		}
		msg, err := c.asm.Add(chunk)
		switch {
		case err != nil:
			return 0, nil, err
		case msg == nil:
			continue
		case len(msg) == 0:
			return 0, nil, errEmpty
		case !into:
			return 0, msg, nil
		}
		return split(msg, head, buf)
	}
}

// split is RecvInto's answer for msg, which has arrived whole.
func split(msg, head, buf []byte) (int, []byte, error) {
	switch {
	case len(msg) < len(head):
		return 0, nil, fmt.Errorf("a message of %d bytes, shorter than its head", len(msg))
	case len(msg)-len(head) > len(buf):
		return len(msg) - len(head), msg, nil
	}
	copy(head, msg)
	return copy(buf, msg[len(head):]), nil, nil
}

// readFile returns the message in the memory file that chunk announced,
// sent by the process from, or with into, RecvInto's answer for it.
func (c *Conn) readFile(chunk []byte, fds []int, from int, head, buf []byte, into bool) (int, []byte, error) {
	defer closeFDs(fds)
	size, err := c.asm.AddFile(chunk, len(fds))
	switch {
	case err != nil:
		return 0, nil, err
	case size == 0:
		return 0, nil, errEmpty
	case into && size >= int64(len(head)) && size-int64(len(head)) <= int64(len(buf)):
		rest := buf[:size-int64(len(head))]
		return len(rest), nil, readFileInto(fds[0], size, from, c.closed.Load, head, rest)
	}
	msg, err := readFile(fds[0], size, from, c.closed.Load)
	if err != nil || !into {
		return 0, msg, err
	}
	return split(msg, head, buf)
}

// Close closes the end; a Recv waiting on it returns.
func (c *Conn) Close() error {
	c.closed.Store(true)
	c.files.Close()
	return closeFile(c.file)
}

// CutShortError is the end of a stream where N messages had begun and
// never ended: their writers died while sending.
type CutShortError struct{ N int }

func (e *CutShortError) Error() string {
	return fmt.Sprintf("%d message(s) cut short: the sender died while sending", e.N)
}

var errEmpty = errors.New("an empty message, not sent by a Connection")
