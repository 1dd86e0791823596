// Package wire is the format of what a parent and its child say to each
// other over the bootstrap socket: length-prefixed frames, the bootstrap
// message that tells a child what to run, and the child's reports (started,
// outcome).
//
// Everything here reads bytes another process wrote, so every decoder
// returns an error for malformed input and never trusts a length before it
// has the bytes.
package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
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
const Version = 1

// Bootstrap tells a child which target to run and who it is.
type Bootstrap struct {
	Token      string // must equal the token of the environment marker
	Target     string // registered name
	Args       []byte // gob stream of the arguments, see Arg
	ArgKinds   []ArgKind
	Files      []int // descriptor numbers, in the child, of the handles among the arguments
	Name       string
	Identity   []int
	Daemon     bool
	Authkey    []byte
	Method     string
	ParentName string
	ParentPid  int
	Dir        string // the parent's working directory, which a forkserver child enters
}

// ArgKind says how one argument travels.
type ArgKind uint8

const (
	ArgValue  ArgKind = iota // gob-encoded in Args
	ArgNil                   // a nil pointer, map, slice or interface: nothing encoded
	ArgHandle                // a library handle: a Handle in Args, its descriptors the next entries of Files
)

// Handle is how a value that holds descriptors (an *os.File, a queue, a
// connection) travels: its descriptors go separately, and State is what
// the child needs to rebuild it around them.
type Handle struct {
	Files int
	State []byte
}

// EncodeBootstrap encodes b for WriteFrame.
func EncodeBootstrap(b *Bootstrap) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeBootstrap decodes a frame written by EncodeBootstrap and checks that
// it is self-consistent.
func DecodeBootstrap(frame []byte) (*Bootstrap, error) {
	var b Bootstrap
	if err := gob.NewDecoder(bytes.NewReader(frame)).Decode(&b); err != nil {
		return nil, fmt.Errorf("bootstrap message: %w", err)
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
	if handles == 0 && len(b.Files) > 0 {
		return nil, fmt.Errorf("bootstrap message: %d descriptors but no argument to hold them", len(b.Files))
	}
	if b.Target == "" {
		return nil, errors.New("bootstrap message: no target")
	}
	return &b, nil
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

// Started is the frame a child sends when its target is about to run.
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
