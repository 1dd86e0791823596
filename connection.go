package multiprocessing

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mpgo/multiprocessing/internal/bridge"
	"github.com/mpgo/multiprocessing/internal/conn"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// Connection is one end of a Pipe: Python's multiprocessing.connection.
// Connection. Pass it to a target as an argument (or a Runner field) and
// it arrives usable in the child. Each message is one Send or SendBytes,
// received whole, up to 1 GiB.
//
// Package connection's Accept and Dial return Connections to other
// programs, Go or Python: their messages are framed as Python frames them,
// SendBytes and RecvBytes meet Python's send_bytes and recv_bytes, and
// they cannot be passed to a child. What follows is of Pipes.
//
// One goroutine may send while another receives. Unlike Python's, several
// processes may send on one end at once: their messages arrive whole, never
// mixed. A sender killed in the middle of a message (SIGKILL) leaves the
// pipe usable: the others' messages arrive, the cut one does not, and the
// reader learns of it at the end of the stream (on Linux and FreeBSD; on
// macOS, as in Python, a cut message spoils the pipe). Two processes that
// receive on one end at once split the messages between them, and a
// message whose first part one of them took is an error for the other:
// give each reader its own pipe, or use a Queue.
//
// On Linux a message of 128 KiB or more goes by a memory file, which the
// sender uses again once the receiver has read the message. The file goes
// first, and SendBytes waits up to 0.3 ms for the receiver to take it up.
// A receiver that does, and that the system lets read the sender's memory
// (process_vm_readv: the same user, and under Yama's ptrace_scope 1 only
// an ancestor of the sender), copies the message straight out of b, one
// copy in all, and SendBytes returns once it has. It reads only the
// memory of the process the kernel says sent the file. Otherwise
// SendBytes copies b into the file and RecvBytes (or RecvBytesInto)
// copies it out, each 64 KiB piece as it lands: two copies, which
// overlap. A sender whose receiver did not come in time, or could not
// read its memory, copies into the file at once for its next eight
// messages.
//
// Either way the message arrives whole or not at all. A sender killed
// before the message is out cuts it short, and the receiver, which learns
// of it within 10 ms, goes on with the next message and reports the cut
// one at the end of the stream, as for chunks. A receiver killed while it
// copies from the sender's memory takes the message with it, as one
// killed after receiving it would; one stopped while it does holds
// SendBytes for a second (and one more for each 256 MiB), after which the
// sender copies the message into the file. A sender stopped (SIGSTOP, a debugger)
// while it copies a message in holds up the messages behind it, other
// senders' too, until it goes on or dies; in Python, a sender stopped in
// the middle of any message does so. A sender has at most four messages
// in files on their way; beyond, it sends in chunks, which wait for the
// reader.
// Smaller messages, and all of them elsewhere, travel in chunks of 64 KiB:
// SendBytes copies b into the socket, and RecvBytes out of it into a
// chunk's buffer and from there into the message it returns, three copies,
// and a third more for a large message, whose buffer grows as its chunks
// arrive. Send and Recv add gob's (see Queue).
type Connection struct {
	end      transport
	kinds    bool // a Pipe's messages begin with their kind; Python's do not
	readable bool
	writable bool
	enc      wire.ItemEncoder
	dec      wire.ItemDecoder

	mu     sync.Mutex
	closed bool
}

// transport is what carries a Connection's messages: a Pipe's socket
// (conn.Conn), or a connection to another program (netconn.Stream, through
// package connection).
type transport = bridge.Transport

// The first byte of each message of a Pipe says how it was sent.
const (
	messageGob   = 'g'
	messageBytes = 'b'
)

// Python's words for using the wrong end of a pipe, or a closed one; they
// match ErrUnsupported and ErrClosed with errors.Is.
var (
	errReadOnly   = &connError{"connection is read-only", ErrUnsupported}
	errWriteOnly  = &connError{"connection is write-only", ErrUnsupported}
	errConnClosed = &connError{"handle is closed", ErrClosed}
)

type connError struct {
	msg      string
	sentinel error
}

func (e *connError) Error() string { return "multiprocessing: " + e.msg }
func (e *connError) Unwrap() error { return e.sentinel }

// Pipe returns the two ends of a new pipe. With duplex both ends send and
// receive; without, the first end only receives and the second only
// sends, as in Python.
func Pipe(duplex bool) (*Connection, *Connection, error) {
	a, b, err := conn.Pair(duplex)
	if err != nil {
		return nil, nil, fmt.Errorf("multiprocessing: Pipe: %w", err)
	}
	return newConn(a, true, duplex), newConn(b, duplex, true), nil
}

func newConn(end *conn.Conn, readable, writable bool) *Connection {
	return &Connection{end: end, kinds: true, readable: readable, writable: writable}
}

func (c *Connection) check(write bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return errConnClosed
	case write && !c.writable:
		return errReadOnly
	case !write && !c.readable:
		return errWriteOnly
	}
	return nil
}

// Send sends v, gob-encoded; the peer receives it with Recv into a pointer
// to v's type. Errors: v cannot be encoded; the end is read-only
// (ErrUnsupported) or closed (ErrClosed); the peer has closed its end.
func (c *Connection) Send(v any) error {
	msg, err := c.enc.EncodeGob(v)
	if err != nil {
		return fmt.Errorf("multiprocessing: Connection.Send: %w", err)
	}
	return c.send(messageGob, msg)
}

// SendBytes sends b as it is; the peer receives it with RecvBytes (or
// Python's recv_bytes, on a connection of package connection).
func (c *Connection) SendBytes(b []byte) error { return c.send(messageBytes, b) }

func (c *Connection) send(kind byte, msg []byte) error {
	if err := c.check(true); err != nil {
		return err
	}
	var err error
	if c.kinds {
		err = c.end.Send([]byte{kind}, msg)
	} else {
		err = c.end.Send(msg)
	}
	if errors.Is(err, wire.ErrFrameTooLarge) {
		return fmt.Errorf("multiprocessing: Connection: %w", err)
	}
	return err
}

// Recv waits for the next message, sent with Send, and decodes it into
// ptr, which points to a value of the type sent. It returns io.EOF once
// the peer has closed its end and every message has been read;
// ErrUnsupported on a write-only end and ErrClosed on a closed one; and an
// error when the message does not decode into ptr or was sent with
// SendBytes (the message is consumed).
func (c *Connection) Recv(ptr any) error {
	msg, err := c.recv()
	if err != nil {
		return err
	}
	if c.kinds {
		if msg[0] != messageGob {
			return errors.New("multiprocessing: Connection.Recv: the message was sent with SendBytes; use RecvBytes")
		}
		msg = msg[1:]
	}
	if err := c.dec.DecodeGob(msg, ptr); err != nil {
		return fmt.Errorf("multiprocessing: Connection.Recv: %w", err)
	}
	return nil
}

// RecvBytes waits for the next message, sent with SendBytes, and returns
// it. It returns io.EOF once the peer has closed its end and every message
// has been read.
//
// Each message is new memory. A loop that receives large messages and
// drops them makes the garbage collector run every few messages while the
// heap is small, and that, not the copy, is then most of a message's
// cost: a 1 MiB message to a child and an answer back took 0.39 ms here
// with GOGC=100, 0.19 with GOGC=400 and 0.08 with RecvBytesInto into a
// buffer the child keeps. Use RecvBytesInto for such loops.
func (c *Connection) RecvBytes() ([]byte, error) {
	msg, err := c.recv()
	if err != nil {
		return nil, err
	}
	if !c.kinds {
		return msg, nil
	}
	if msg[0] != messageBytes {
		return nil, errors.New("multiprocessing: Connection.RecvBytes: the message was sent with Send; use Recv")
	}
	return msg[1:], nil
}

// RecvBytesInto waits for the next message, sent with SendBytes, copies
// it into buf and returns its length: Python's recv_bytes_into. Where
// Python takes an offset, pass buf[offset:]. A receiver that reuses buf
// has nothing to allocate for each message, which for large ones is most
// of RecvBytes' cost: a message in a memory file (see above) goes from
// the file straight into buf, one copy on this side.
//
// A message longer than buf is not lost: the error is a
// *BufferTooShortError that holds it, and buf is left as it was, unless a
// message cut short (its sender killed while it copied it in) had begun
// to arrive there first. The other errors are RecvBytes', after which buf
// may have been written.
func (c *Connection) RecvBytesInto(buf []byte) (int, error) {
	if err := c.check(false); err != nil {
		return 0, err
	}
	var kind [1]byte
	head := kind[:]
	if !c.kinds {
		head = nil
	}
	n, msg, err := c.end.RecvInto(head, buf)
	if err != nil {
		return 0, c.recvError(err)
	}
	if msg != nil {
		kind[0] = msg[0] // with kinds; unused without
		msg = msg[len(head):]
	}
	if c.kinds && kind[0] != messageBytes {
		return 0, errors.New("multiprocessing: Connection.RecvBytesInto: the message was sent with Send; use Recv")
	}
	if msg != nil {
		return 0, &BufferTooShortError{Message: msg, Size: len(buf)}
	}
	return n, nil
}

// BufferTooShortError is RecvBytesInto's error for a message longer than
// the buffer it was given: Python's BufferTooShort, whose args[0] is the
// message. The message is received all the same, and is here.
type BufferTooShortError struct {
	Message []byte // the whole message
	Size    int    // the length of the buffer it did not fit
}

// Error says how long the message and the buffer were.
func (e *BufferTooShortError) Error() string {
	return fmt.Sprintf("multiprocessing: a message of %d bytes does not fit a buffer of %d", len(e.Message), e.Size)
}

func (c *Connection) recv() ([]byte, error) {
	if err := c.check(false); err != nil {
		return nil, err
	}
	msg, err := c.end.Recv()
	if err != nil {
		return nil, c.recvError(err)
	}
	return msg, nil
}

// recvError is the error a receive returns for its transport's err.
func (c *Connection) recvError(err error) error {
	switch {
	case err == io.EOF:
		return io.EOF
	case errors.Is(err, os.ErrClosed):
		return errConnClosed
	}
	return fmt.Errorf("multiprocessing: Connection: %w", err)
}

// Poll reports whether a message (or the end of the stream) is ready to be
// received, waiting up to timeout for one; a timeout below zero waits for
// ever, zero not at all.
func (c *Connection) Poll(timeout time.Duration) (bool, error) {
	if err := c.check(false); err != nil {
		return false, err
	}
	return c.end.Poll(timeout)
}

// Close closes this end; the peer receives io.EOF once it has read what was
// sent. Closing twice does nothing.
func (c *Connection) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.end.Close()
}

// Fileno returns the descriptor of this end, -1 once it is closed.
func (c *Connection) Fileno() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return -1
	}
	return c.end.FD()
}

func (c *Connection) handleFiles() ([]*os.File, []byte, error) {
	if err := c.check(c.writable); err != nil {
		return nil, nil, err
	}
	if c.end.File() == nil {
		return nil, nil, fmt.Errorf("%w: a connection to another program cannot be passed to a child; pass its address", ErrUnsupported)
	}
	state := []byte{'-', '-'}
	if c.readable {
		state[0] = 'r'
	}
	if c.writable {
		state[1] = 'w'
	}
	return []*os.File{c.end.File()}, state, nil
}

func (c *Connection) restoreHandle(fds []int, state []byte) error {
	if len(fds) != 1 || len(state) != 2 {
		return fmt.Errorf("a connection sent as %q with %d descriptors", state, len(fds))
	}
	*c = *newConn(conn.Adopt(fds[0]), state[0] == 'r', state[1] == 'w')
	return nil
}
