package conn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// Stream is a connection to another program over a net.Conn, framed as
// Python's multiprocessing.connection frames its messages: a length, then
// the payload; no chunks, no memory files.
type Stream struct {
	c   net.Conn
	rmu sync.Mutex // one Recv or Poll at a time
	r   *bufio.Reader
	bad error      // set once a message could not be read whole: what follows is not a frame
	wmu sync.Mutex // one Send at a time
}

// MaxStreamMessage is the largest message a Stream receives, as a Pipe.
const MaxStreamMessage = 1 << 30

// NewStream frames messages over c.
func NewStream(c net.Conn) *Stream {
	return &Stream{c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

// NetConn is the connection the Stream frames over.
func (s *Stream) NetConn() net.Conn { return s.c }

// Send sends the message made of parts, header and payload in one write
// where the connection allows (writev on a socket).
func (s *Stream) Send(parts ...[]byte) error {
	var n uint64
	for _, p := range parts {
		n += uint64(len(p))
	}
	bufs := make(net.Buffers, 0, len(parts)+1)
	bufs = append(bufs, wire.AppendPyHeader(make([]byte, 0, wire.PyLongHeader), n))
	bufs = append(bufs, parts...)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := bufs.WriteTo(s.c)
	return err
}

// Recv waits for the next message; io.EOF when the peer closed the
// connection between two messages.
func (s *Stream) Recv() ([]byte, error) { return s.RecvMax(MaxStreamMessage) }

// RecvMax is Recv of a message of at most max bytes: a longer one is an
// error, after which the Stream receives nothing more (what follows it is
// not a frame), as Python's recv_bytes(maxlength).
func (s *Stream) RecvMax(max uint64) ([]byte, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.bad != nil {
		return nil, s.bad
	}
	var head [wire.PyLongHeader]byte
	if _, err := io.ReadFull(s.r, head[:wire.PyShortHeader]); err != nil {
		return nil, s.fail(err, err == io.EOF)
	}
	n, long, err := wire.PyShortLength(head[:])
	if err == nil && long {
		if _, err = io.ReadFull(s.r, head[wire.PyShortHeader:]); err == nil {
			n = wire.PyLongLength(head[wire.PyShortHeader:])
		}
	}
	switch {
	case err != nil:
		return nil, s.fail(err, false)
	case n > max:
		return nil, s.fail(fmt.Errorf("%w: a message of %d bytes, more than %d", wire.ErrPyLength, n, max), false)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(s.r, msg); err != nil {
		return nil, s.fail(err, false)
	}
	return msg, nil
}

// fail makes err the error of every later Recv, unless the stream ended
// cleanly between messages (clean) or a deadline passed before a header
// began; io.EOF inside a message is Python's "got end of file during
// message".
func (s *Stream) fail(err error, clean bool) error {
	switch {
	case clean:
		return io.EOF
	case errors.Is(err, os.ErrDeadlineExceeded):
		// A deadline (a handshake's, a Poll's) may end a read that has
		// taken part of a frame: the stream is no longer framed.
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err = errors.New("got end of file during message")
	}
	s.bad = err
	return err
}

// Poll reports whether a message, or the end of the stream, is ready to
// be received, waiting up to timeout (below zero: for ever). With a
// timeout of 0 it waits up to a millisecond: Go does not try a read whose
// deadline has passed.
func (s *Stream) Poll(timeout time.Duration) (bool, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.r.Buffered() > 0 || s.bad != nil {
		return true, nil
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(max(timeout, time.Millisecond))
	}
	if err := s.c.SetReadDeadline(deadline); err != nil {
		return false, err
	}
	_, err := s.r.Peek(1)
	s.c.SetReadDeadline(time.Time{})
	switch {
	case err == nil, err == io.EOF:
		return true, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, nil
	}
	return false, err
}

// SetDeadline bounds every read and write until it is changed; the zero
// time takes the bound away.
func (s *Stream) SetDeadline(t time.Time) error { return s.c.SetDeadline(t) }

// SetReadDeadline bounds reads alone.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.c.SetReadDeadline(t) }

// Close closes the connection.
func (s *Stream) Close() error { return s.c.Close() }

// FD is the connection's descriptor; -1 for one that has none (a TLS
// connection) or once closed.
func (s *Stream) FD() int {
	sc, ok := s.c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(u uintptr) { fd = int(u) }) != nil {
		return -1
	}
	return fd
}

// File is nil: a Stream is not passed to children.
func (s *Stream) File() *os.File { return nil }
