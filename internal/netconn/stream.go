package netconn

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
//
// Reads and writes may be bounded by progress (SetIdle): each piece of a
// message must move within the bound, however long the whole takes. A
// Stream starts with a small read buffer, for a handshake that a peer
// without the key may never finish, and takes a larger one with Grow.
type Stream struct {
	c net.Conn

	rmu sync.Mutex // one Recv or Poll at a time
	r   *bufio.Reader
	bad error // set once a message could not be read whole: what follows is not a frame

	wmu sync.Mutex // one Send at a time

	dmu       sync.Mutex // the deadlines' state
	readIdle  time.Duration
	writeIdle time.Duration
	first     time.Time // the next read may wait until then
	absolute  time.Time // no read or write goes past this
	stopped   bool      // Interrupt: reads fail from now on
	dc        deadlineConn
}

// MaxStreamMessage is the largest message a Stream receives, as a Pipe,
// with room for a queue call's head.
const MaxStreamMessage = 1<<30 + 64

// errInterrupted is what a read returns after Interrupt.
var errInterrupted = errors.New("the connection's reads were interrupted")

// NewStream frames messages over c, with a 512-byte read buffer until
// Grow.
func NewStream(c net.Conn) *Stream {
	s := &Stream{c: c}
	s.dc = deadlineConn{s}
	s.r = bufio.NewReaderSize(s.dc, 512)
	return s
}

// Grow gives the Stream its full read buffer, once its peer is known.
func (s *Stream) Grow() {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.r = bufio.NewReaderSize(s.r, 64<<10)
}

// deadlineConn is the Stream's net.Conn with its deadlines applied before
// each read and each piece of a write.
type deadlineConn struct{ s *Stream }

// earliest is the earlier of two deadlines, the zero time being none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

func (d deadlineConn) Read(p []byte) (int, error) {
	s := d.s
	s.dmu.Lock()
	if s.stopped {
		s.dmu.Unlock()
		return 0, errInterrupted
	}
	var deadline time.Time
	if s.readIdle > 0 {
		deadline = time.Now().Add(s.readIdle)
	}
	if !s.first.IsZero() {
		if deadline.IsZero() || s.first.After(deadline) {
			deadline = s.first
		}
		s.first = time.Time{}
	}
	s.c.SetReadDeadline(earliest(deadline, s.absolute))
	s.dmu.Unlock()
	return s.c.Read(p)
}

// writePiece is how much of a message is written under one deadline.
const writePiece = 256 << 10

func (d deadlineConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), writePiece)
		d.s.setWriteDeadline()
		m, err := d.s.c.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (s *Stream) setWriteDeadline() {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	var deadline time.Time
	if s.writeIdle > 0 {
		deadline = time.Now().Add(s.writeIdle)
	}
	s.c.SetWriteDeadline(earliest(deadline, s.absolute))
}

// SetIdle bounds each read and each piece of a write to the given time of
// no progress (0: no bound).
func (s *Stream) SetIdle(read, write time.Duration) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.readIdle, s.writeIdle = read, write
}

// Expect lets the next read wait until t, beyond the idle bound: for a
// reply that the peer may take that long to begin.
func (s *Stream) Expect(t time.Time) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.first = t
}

// SetDeadline bounds every read and write, whatever the other bounds say,
// until it is set again; the zero time takes it away.
func (s *Stream) SetDeadline(t time.Time) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.absolute = t
	s.c.SetDeadline(t)
}

// Interrupt makes reads fail from now on, the one under way too; writes go
// on, within their bounds.
func (s *Stream) Interrupt() {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.stopped = true
	s.c.SetReadDeadline(time.Unix(1, 0))
}

// Send sends the message made of parts. Over a socket the header and
// small payloads go in one write (writev).
func (s *Stream) Send(parts ...[]byte) error {
	var n uint64
	for _, p := range parts {
		n += uint64(len(p))
	}
	head := wire.AppendPyHeader(make([]byte, 0, wire.PyLongHeader), n)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if n <= writePiece {
		// net.Buffers writes all at once where it can, under the
		// deadline of one piece.
		s.setWriteDeadline()
		bufs := append(net.Buffers{head}, parts...)
		_, err := bufs.WriteTo(s.c)
		return err
	}
	for _, p := range append([][]byte{head}, parts...) {
		if _, err := s.dc.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// Recv waits for the next message; io.EOF when the peer closed the
// connection between two messages.
func (s *Stream) Recv() ([]byte, error) { return s.RecvMax(MaxStreamMessage) }

// RecvMax is Recv of a message of at most max bytes: a longer one is an
// error, after which the Stream receives nothing more (what follows it is
// not a frame), as Python's recv_bytes(maxlength).
func (s *Stream) RecvMax(max uint64) ([]byte, error) {
	_, msg, err := s.recvInto(max, nil, nil, false)
	return msg, err
}

// RecvInto is Recv that puts the message's first len(head) bytes into
// head and the rest into buf, when they fit: n is the length of the rest.
// A message whose rest does not fit buf comes back whole in msg (head and
// buf untouched); one shorter than head is an error.
func (s *Stream) RecvInto(head, buf []byte) (n int, msg []byte, err error) {
	return s.recvInto(MaxStreamMessage, head, buf, true)
}

func (s *Stream) recvInto(max uint64, head, buf []byte, into bool) (int, []byte, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.bad != nil {
		return 0, nil, s.bad
	}
	var hdr [wire.PyLongHeader]byte
	if _, err := io.ReadFull(s.r, hdr[:wire.PyShortHeader]); err != nil {
		return 0, nil, s.fail(err, err == io.EOF)
	}
	n, long, err := wire.PyShortLength(hdr[:])
	if err == nil && long {
		if _, err = io.ReadFull(s.r, hdr[wire.PyShortHeader:]); err == nil {
			n = wire.PyLongLength(hdr[wire.PyShortHeader:])
		}
	}
	switch {
	case err != nil:
		return 0, nil, s.fail(err, false)
	case n > max:
		return 0, nil, s.fail(fmt.Errorf("%w: a message of %d bytes, more than %d", wire.ErrPyLength, n, max), false)
	case into && n >= uint64(len(head)) && n-uint64(len(head)) <= uint64(len(buf)):
		rest := buf[:n-uint64(len(head))]
		for _, b := range [][]byte{head, rest} {
			if _, err := io.ReadFull(s.r, b); err != nil {
				return 0, nil, s.fail(err, false)
			}
		}
		return len(rest), nil, nil
	}
	msg, err := readGrowing(s.r, int(n))
	switch {
	case err != nil:
		return 0, nil, s.fail(err, false)
	case !into:
		return 0, msg, nil
	case len(msg) < len(head):
		return 0, nil, fmt.Errorf("a message of %d bytes, shorter than its head", len(msg))
	}
	return len(msg) - len(head), msg, nil
}

// readGrowing reads n bytes, in a buffer that grows as they arrive: a
// header alone does not make this side allocate what it announces.
func readGrowing(r io.Reader, n int) ([]byte, error) {
	const first = 1 << 20
	msg := make([]byte, min(n, first))
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	for len(msg) < n {
		more := min(n-len(msg), len(msg))
		msg = append(msg, make([]byte, more)...)
		if _, err := io.ReadFull(r, msg[len(msg)-more:]); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// fail makes err the error of every later Recv, unless the stream ended
// cleanly between two messages (clean); any other failure, a deadline's
// included, may have taken part of a frame. io.EOF inside a message is
// Python's "got end of file during message".
func (s *Stream) fail(err error, clean bool) error {
	switch {
	case clean:
		return io.EOF
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err = errors.New("got end of file during message")
	case errors.Is(err, net.ErrClosed):
		err = os.ErrClosed // as a Pipe's end says it
	}
	s.bad = err
	return err
}

// Poll reports whether a message, or the end of the stream, is ready to
// be received, waiting up to timeout (below zero: for ever). With a
// timeout of 0 it waits up to a millisecond: Go does not try a read whose
// deadline has passed. It waits for a Recv under way in another goroutine
// to end first.
func (s *Stream) Poll(timeout time.Duration) (bool, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.r.Buffered() > 0 || s.bad != nil {
		return true, nil
	}
	if timeout >= 0 {
		s.Expect(time.Now().Add(max(timeout, time.Millisecond)))
		defer s.Expect(time.Time{})
	}
	_, err := s.r.Peek(1)
	switch {
	case err == nil, err == io.EOF:
		return true, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, nil
	}
	// A reset, say: the next Recv must see it too, not a clean end.
	s.bad = err
	return true, nil
}

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
