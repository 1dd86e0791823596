package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
)

// A Connection's message travels as chunks. On a SOCK_SEQPACKET socket
// each chunk is one datagram, which the kernel delivers whole or not at
// all; so a sender killed in the middle of a large message leaves some
// whole chunks behind, never half of one, and the chunks of every other
// sender stay readable. A chunk is
//
//	flags  1 byte   ChunkFirst, ChunkLast
//	writer 8 bytes  random, one per sending Connection
//	size   4 bytes  the whole message's length
//	n      4 bytes  this chunk's payload length
//	payload n bytes
//
// all big-endian. The reader puts each writer's chunks together apart from
// the others', so the messages of two processes sending on one end never
// mix.
const (
	ChunkHeader = 17
	// MaxChunk is the largest chunk, header included: a reader's buffer.
	// It is well under the smallest socket send buffer Linux allows by
	// default, so one chunk always fits in one datagram.
	MaxChunk = 64 << 10

	ChunkFirst = 1 << 0
	ChunkLast  = 1 << 1
	// ChunkFile marks a message that is not in chunks but in a memory
	// file, the one descriptor that rides on this chunk, which carries no
	// payload (see internal/bulk).
	ChunkFile = 1 << 2
)

// FileChunk returns the chunk that announces writer's message of size
// bytes in a memory file.
func FileChunk(writer uint64, size int) []byte {
	head := make([]byte, ChunkHeader)
	head[0] = ChunkFirst | ChunkLast | ChunkFile
	binary.BigEndian.PutUint64(head[1:], writer)
	binary.BigEndian.PutUint32(head[9:], uint32(size))
	return head
}

// IsFileChunk reports whether chunk announces a message in a memory file.
func IsFileChunk(chunk []byte) bool { return len(chunk) > 0 && chunk[0]&ChunkFile != 0 }

// Chunks splits the message made of parts, without copying them, into the
// chunks writer sends: each is a header and the payload slices that follow
// it. An empty message is one chunk.
func Chunks(writer uint64, parts ...[]byte) (iter.Seq[[][]byte], error) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	if size > MaxFrame {
		return nil, ErrFrameTooLarge
	}
	return func(yield func([][]byte) bool) {
		var head [ChunkHeader]byte
		flags := byte(ChunkFirst)
		sent := 0
		bufs := make([][]byte, 0, 1+len(parts))
		for {
			n := min(size-sent, MaxChunk-ChunkHeader)
			if sent+n == size {
				flags |= ChunkLast
			}
			head[0] = flags
			binary.BigEndian.PutUint64(head[1:], writer)
			binary.BigEndian.PutUint32(head[9:], uint32(size))
			binary.BigEndian.PutUint32(head[13:], uint32(n))
			bufs = append(bufs[:0], head[:])
			// The payload of this chunk: bytes [sent, sent+n) of the parts.
			skip, want := sent, n
			for _, p := range parts {
				if skip >= len(p) {
					skip -= len(p)
					continue
				}
				take := min(len(p)-skip, want)
				if take > 0 {
					bufs = append(bufs, p[skip:skip+take])
				}
				want -= take
				skip = 0
				if want == 0 {
					break
				}
			}
			if !yield(bufs) {
				return
			}
			sent += n
			if flags&ChunkLast != 0 {
				return
			}
			flags = 0
		}
	}, nil
}

// ChunkSize reads the payload length from a chunk's header, for readers of
// a stream, which must know where the chunk ends. It fails for a length
// over MaxChunk.
func ChunkSize(head []byte) (int, error) {
	if len(head) < ChunkHeader {
		return 0, fmt.Errorf("chunk header of %d bytes, want %d", len(head), ChunkHeader)
	}
	n := binary.BigEndian.Uint32(head[13:])
	if n > MaxChunk-ChunkHeader {
		return 0, fmt.Errorf("chunk payload of %d bytes, over the %d-byte limit", n, MaxChunk-ChunkHeader)
	}
	return int(n), nil
}

// ErrMidMessage reports chunks whose message began before this reader was
// reading: another process took the first ones. The chunks are dropped.
var ErrMidMessage = errors.New("chunks of a message another reader began (two processes receive on one end)")

// Assembler puts chunks back together into messages, one writer at a time.
// The zero value is ready to use; it is not safe for concurrent use.
type Assembler struct {
	open map[uint64][]byte // writer → message so far
	lost map[uint64]bool   // writer → the rest of its message is dropped
	cut  int               // messages begun again or never finished
}

// Add takes one chunk as read and returns the message it completes, or nil
// when the message goes on. A malformed chunk gives an error and is dropped
// with the message it belongs to; the Assembler stays usable.
func (a *Assembler) Add(chunk []byte) ([]byte, error) {
	n, err := ChunkSize(chunk)
	if err != nil {
		return nil, err
	}
	if len(chunk) != ChunkHeader+n {
		return nil, fmt.Errorf("chunk of %d bytes says it carries %d", len(chunk), n)
	}
	flags := chunk[0]
	writer := binary.BigEndian.Uint64(chunk[1:])
	size := int(binary.BigEndian.Uint32(chunk[9:]))
	payload := chunk[ChunkHeader:]
	if a.open == nil {
		a.open, a.lost = map[uint64][]byte{}, map[uint64]bool{}
	}
	msg, begun := a.open[writer]
	switch {
	case flags&^(ChunkFirst|ChunkLast) != 0:
		delete(a.open, writer)
		return nil, fmt.Errorf("chunk with unknown flags %#x", flags)
	case size > MaxFrame:
		delete(a.open, writer)
		return nil, fmt.Errorf("%w: message of %d bytes", ErrFrameTooLarge, size)
	case flags&ChunkFirst != 0:
		if begun {
			a.cut++ // its writer began again: the message before is lost
		}
		delete(a.lost, writer)
		// A size alone cannot make the reader allocate more than a
		// chunk: the buffer grows fourfold as chunks arrive, so a lying
		// size costs at most four times what was really sent.
		msg = make([]byte, 0, min(size, MaxChunk))
	case !begun:
		if a.lost[writer] {
			if flags&ChunkLast != 0 {
				delete(a.lost, writer)
			}
			return nil, nil
		}
		if flags&ChunkLast == 0 {
			a.lost[writer] = true
		}
		return nil, ErrMidMessage
	}
	need := len(msg) + len(payload)
	if need > size {
		delete(a.open, writer)
		return nil, fmt.Errorf("chunks of %d bytes and more for a message of %d", need, size)
	}
	if need > cap(msg) {
		grown := make([]byte, len(msg), min(size, max(4*cap(msg), need)))
		copy(grown, msg)
		msg = grown
	}
	msg = append(msg, payload...)
	if flags&ChunkLast == 0 {
		a.open[writer] = msg
		return nil, nil
	}
	delete(a.open, writer)
	if len(msg) != size {
		return nil, fmt.Errorf("message of %d bytes ended after %d", size, len(msg))
	}
	return msg, nil
}

// AddFile takes a chunk that announces a message in a memory file, which
// came with fds descriptors, and returns the message's size; the caller
// reads the file. Like a first chunk, it ends a message its writer had
// begun and not finished.
func (a *Assembler) AddFile(chunk []byte, fds int) (int64, error) {
	n, err := ChunkSize(chunk)
	switch {
	case err != nil:
		return 0, err
	case len(chunk) != ChunkHeader || n != 0:
		return 0, fmt.Errorf("a file chunk of %d bytes says it carries %d", len(chunk), n)
	case chunk[0] != ChunkFirst|ChunkLast|ChunkFile:
		return 0, fmt.Errorf("file chunk with flags %#x", chunk[0])
	case fds != 1:
		return 0, fmt.Errorf("a file chunk with %d descriptors", fds)
	}
	size := int64(binary.BigEndian.Uint32(chunk[9:]))
	if size > MaxFrame {
		return 0, fmt.Errorf("%w: message of %d bytes", ErrFrameTooLarge, size)
	}
	writer := binary.BigEndian.Uint64(chunk[1:])
	if _, begun := a.open[writer]; begun {
		a.cut++
		delete(a.open, writer)
	}
	delete(a.lost, writer)
	return size, nil
}

// Cut counts a message that was begun and will never be finished: its
// writer died while it filled the message's memory file.
func (a *Assembler) Cut() { a.cut++ }

// CutShort returns how many messages were begun and never finished (their
// writers died while sending), and forgets them. A reader asks at the end
// of the stream, when no writer is left to finish one.
func (a *Assembler) CutShort() int {
	n := a.cut + len(a.open)
	a.cut = 0
	clear(a.open)
	clear(a.lost)
	return n
}
