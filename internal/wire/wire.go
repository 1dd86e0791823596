// Package wire holds every format two processes of the library exchange,
// each where it is defined: length-prefixed frames, the bootstrap message
// that tells a child what to run and the child's reports (this file); a
// queue's requests and replies (queue.go) and lane messages (lane.go); a
// Connection's chunks (chunk.go); the forkserver's messages
// (forkserver.go).
//
// Everything here reads bytes another process wrote, so every decoder
// returns an error for malformed input and never trusts a length before it
// has the bytes.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrame is the largest frame a reader accepts. It bounds what a corrupt or
// hostile length prefix can make a reader wait for; arguments larger than
// this cannot be passed to a child.
const MaxFrame = 1 << 30

// chunk is how much a reader allocates at a time, so that a length prefix
// that lies costs memory only for bytes that really arrive.
const chunk = 1 << 20

// ErrFrameTooLarge reports a length prefix over MaxFrame.
var ErrFrameTooLarge = errors.New("frame larger than the 1 GiB limit")

// WriteFrame writes parts as one frame: a 4-byte big-endian length, then
// the parts one after the other. Large parts are written as they are, not
// copied; the caller serialises writers, as a frame takes several writes.
func WriteFrame(w io.Writer, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > MaxFrame {
		return ErrFrameTooLarge
	}
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+min(n, chunk)), uint32(n))
	for _, p := range parts {
		if len(p) <= chunk-len(buf) {
			buf = append(buf, p...)
			continue
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	if len(buf) > 0 {
		_, err := w.Write(buf)
		return err
	}
	return nil
}

// AppendFrame appends to dst the frame that WriteFrame(w, head,
// payload...) would write.
func AppendFrame(dst, head []byte, payload ...[]byte) ([]byte, error) {
	n := len(head)
	for _, p := range payload {
		n += len(p)
	}
	if n > MaxFrame {
		return dst, ErrFrameTooLarge
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, head...)
	for _, p := range payload {
		dst = append(dst, p...)
	}
	return dst, nil
}

// ReadFrame reads one frame written by WriteFrame. It returns io.EOF only
// when the stream ends cleanly before a frame starts, and
// io.ErrUnexpectedEOF when it ends inside one.
func ReadFrame(r io.Reader) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := int64(binary.BigEndian.Uint32(head[:]))
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: length prefix %d", ErrFrameTooLarge, n)
	}
	// A frame larger than a chunk gets its whole buffer once a chunk of it
	// has arrived: a length prefix alone cannot make a reader allocate more
	// than a chunk. (Fresh memory is what large frames cost most, so it is
	// allocated once.)
	b := make([]byte, 0, min(n, chunk))
	for int64(len(b)) < n {
		if len(b) == cap(b) {
			grown := make([]byte, len(b), n)
			copy(grown, b)
			b = grown
		}
		got, err := io.ReadFull(r, b[len(b):cap(b)])
		b = b[:len(b)+got]
		if err != nil {
			return nil, fmt.Errorf("frame of %d bytes ended after %d: %w", n, len(b), noEOF(err))
		}
	}
	return b, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Version is the bootstrap format version carried by the environment
// marker; a child refuses a marker of any other version.
const Version = 4

// Bootstrap tells a child which target to run and who it is.
type Bootstrap struct {
	Token      string // must equal the token of the environment marker
	Target     string // registered name
	Args       []byte // gob stream of the arguments of kind ArgValue
	ArgKinds   []ArgKind
	Handles    []Handle // one for each argument of kind ArgHandle
	Files      []int    // descriptor numbers, in the child, of the handles among the arguments
	Name       string
	Identity   []int
	Daemon     bool
	Authkey    []byte
	Method     string
	ParentName string
	ParentPid  int
	Dir        string // the parent's working directory, which a forkserver child enters
	// Worker makes the child a pool worker once its target (the pool's
	// initializer) has returned, when it is not 0: the last Worker of
	// Files are its link to the pool (its socket, then its page if it has
	// one).
	Worker int
}

// ArgKind says how one argument travels.
type ArgKind uint8

const (
	ArgValue  ArgKind = iota // gob-encoded in Args
	ArgNil                   // a nil pointer, map, slice or interface: nothing encoded
	ArgHandle                // a library handle: the next of Handles, its descriptors the next entries of Files
)

// Handle is how a value that holds descriptors (an *os.File, a queue, a
// connection) travels: its descriptors go separately, and State is what
// the child needs to rebuild it around them.
type Handle struct {
	Files int
	State []byte
}

// EncodeBootstrap encodes b for WriteFrame. The format is the fields in
// order: strings and byte slices as a uvarint length and the bytes, lists
// as a uvarint count and the items, integers as varints, the flag as a
// byte. (A hand-written format, not gob: a child decodes it once, before
// anything is warm, and gob's first decode costs hundreds of microseconds
// there.)
func EncodeBootstrap(b *Bootstrap) []byte {
	e := make([]byte, 0, 128+len(b.Args))
	e = appendBytes(e, []byte(b.Token))
	e = appendBytes(e, []byte(b.Target))
	e = appendBytes(e, b.Args)
	e = binary.AppendUvarint(e, uint64(len(b.ArgKinds)))
	for _, k := range b.ArgKinds {
		e = append(e, byte(k))
	}
	e = binary.AppendUvarint(e, uint64(len(b.Handles)))
	for _, h := range b.Handles {
		e = binary.AppendVarint(e, int64(h.Files))
		e = appendBytes(e, h.State)
	}
	e = appendInts(e, b.Files)
	e = appendBytes(e, []byte(b.Name))
	e = appendInts(e, b.Identity)
	if b.Daemon {
		e = append(e, 1)
	} else {
		e = append(e, 0)
	}
	e = appendBytes(e, b.Authkey)
	e = appendBytes(e, []byte(b.Method))
	e = appendBytes(e, []byte(b.ParentName))
	e = binary.AppendVarint(e, int64(b.ParentPid))
	e = appendBytes(e, []byte(b.Dir))
	e = append(e, byte(b.Worker))
	return e
}

func appendBytes(e, b []byte) []byte {
	return append(binary.AppendUvarint(e, uint64(len(b))), b...)
}

func appendInts(e []byte, xs []int) []byte {
	e = binary.AppendUvarint(e, uint64(len(xs)))
	for _, x := range xs {
		e = binary.AppendVarint(e, int64(x))
	}
	return e
}

// decoder reads what EncodeBootstrap wrote, or a pool's frames; its first
// error sticks.
type decoder struct {
	b   []byte
	err error
	of  string // what is decoded, for errors: "bootstrap message" if empty
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		of := d.of
		if of == "" {
			of = "bootstrap message"
		}
		d.err = fmt.Errorf("%s: %s", of, what)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or bad " + what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int(what string) int {
	v, n := binary.Varint(d.b)
	if n <= 0 || int64(int(v)) != v {
		d.fail("truncated or bad " + what)
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("%s of %d bytes, %d left", what, n, len(d.b)))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(what string) string { return string(d.bytes(what)) }

// count reads a list's length, which cannot exceed the bytes left, as each
// item takes at least one.
func (d *decoder) count(what string) int {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("%d %s, %d bytes left", n, what, len(d.b)))
		return 0
	}
	return int(n)
}

func (d *decoder) ints(what string) []int {
	n := d.count(what)
	if n == 0 {
		return nil
	}
	xs := make([]int, n)
	for i := range xs {
		xs[i] = d.int(what)
	}
	return xs
}

// DecodeBootstrap decodes a frame written by EncodeBootstrap and checks that
// it is self-consistent.
func DecodeBootstrap(frame []byte) (*Bootstrap, error) {
	d := &decoder{b: frame}
	b := &Bootstrap{
		Token:  d.string("token"),
		Target: d.string("target"),
		Args:   d.bytes("arguments"),
	}
	if n := d.count("argument kinds"); n > 0 {
		b.ArgKinds = make([]ArgKind, n)
		for i := range b.ArgKinds {
			b.ArgKinds[i] = ArgKind(d.b[i])
		}
		d.b = d.b[n:]
	}
	if n := d.count("handles"); n > 0 {
		b.Handles = make([]Handle, n)
		for i := range b.Handles {
			b.Handles[i] = Handle{Files: d.int("handle"), State: d.bytes("handle state")}
		}
	}
	b.Files = d.ints("descriptors")
	b.Name = d.string("name")
	b.Identity = d.ints("identity")
	if len(d.b) == 0 {
		d.fail("truncated before the daemon flag")
	} else {
		b.Daemon, d.b = d.b[0] == 1, d.b[1:]
	}
	b.Authkey = d.bytes("authkey")
	b.Method = d.string("method")
	b.ParentName = d.string("parent name")
	b.ParentPid = d.int("parent pid")
	b.Dir = d.string("directory")
	if len(d.b) == 0 {
		d.fail("truncated before the worker flag")
	} else {
		b.Worker, d.b = int(d.b[0]), d.b[1:]
		if b.Worker > 2 {
			d.fail(fmt.Sprintf("a pool worker of %d descriptors", b.Worker))
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) > 0 {
		return nil, fmt.Errorf("bootstrap message: %d bytes after the end", len(d.b))
	}
	handles := 0
	for _, k := range b.ArgKinds {
		switch k {
		case ArgValue, ArgNil:
		case ArgHandle:
			handles++
		default:
			return nil, fmt.Errorf("bootstrap message: unknown argument kind %d", k)
		}
	}
	if handles != len(b.Handles) {
		return nil, fmt.Errorf("bootstrap message: %d handles for %d arguments that are handles", len(b.Handles), handles)
	}
	files := 0
	for _, h := range b.Handles {
		if h.Files < 0 || h.Files > 1<<16 {
			return nil, fmt.Errorf("bootstrap message: a handle of %d descriptors", h.Files)
		}
		files += h.Files
	}
	files += b.Worker
	if len(b.Files) > files {
		return nil, fmt.Errorf("bootstrap message: %d descriptors for handles that hold %d", len(b.Files), files)
	}
	if b.Target == "" {
		return nil, errors.New("bootstrap message: no target")
	}
	return b, nil
}

// What a child reports, the first byte of each of its frames.
const (
	reportStarted = 'S' // the target is about to run
	reportOutcome = 'O' // the target ended; the exit code and message follow
)

// MaxMessage bounds the message of an outcome, so that a report always fits
// in the socket's buffer and a child never blocks on it while its parent
// waits for it to exit.
const MaxMessage = 64 << 10

// Started is the frame a child sends once it has called Init and is about
// to run its target (a forkserver's warm child: to wait for it).
func Started() []byte { return []byte{reportStarted} }

// Outcome is the frame a child sends when its target has ended.
func Outcome(code int, message string) []byte {
	if len(message) > MaxMessage {
		message = message[:MaxMessage-len("\n[truncated]")] + "\n[truncated]"
	}
	b := make([]byte, 5+len(message))
	b[0] = reportOutcome
	binary.BigEndian.PutUint32(b[1:], uint32(int32(code)))
	copy(b[5:], message)
	return b
}

// Report is what a parent learned from its child's frames.
type Report struct {
	Started    bool
	HasOutcome bool
	Code       int
	Message    string
}

// Add folds one frame from the child into r.
func (r *Report) Add(frame []byte) error {
	if len(frame) == 0 {
		return errors.New("empty report from child")
	}
	switch frame[0] {
	case reportStarted:
		r.Started = true
	case reportOutcome:
		if len(frame) < 5 {
			return errors.New("truncated outcome report from child")
		}
		r.Started = true
		r.HasOutcome = true
		r.Code = int(int32(binary.BigEndian.Uint32(frame[1:])))
		r.Message = string(frame[5:])
	default:
		return fmt.Errorf("unknown report %q from child", frame[0])
	}
	return nil
}
