package wire

import (
	"encoding/binary"
	"fmt"
)

// A queue's broker and the processes that use it exchange requests and
// replies, one frame each, over a private stream socket per process.
// Requests carry an id that their reply repeats, so that one process can
// have several calls under way; id 0 asks for no reply.

// Request operations.
const (
	OpPut  = 'P' // Payload: the item
	OpGet  = 'G'
	OpSize = 'S'
	OpDone = 'T' // TaskDone
	OpJoin = 'J' // wait until every item is done
	// OpUnget gives back items taken from the queue's lane and not used.
	// Payload: a lane batch message (see ParseLane).
	OpUnget = 'U'
	// OpHello asks a queue served over a network for its maxsize
	// (StatusSize).
	OpHello = 'H'
)

// Reply statuses.
const (
	StatusOK       = 'K'
	StatusItem     = 'I' // Payload: the item
	StatusEmpty    = 'E'
	StatusFull     = 'F'
	StatusClosed   = 'C'
	StatusTaskDone = 'D' // TaskDone called more times than items were put
	StatusSize     = 'N' // Payload: 8 bytes, big-endian
	StatusError    = 'X' // Payload: the message
)

// Request is one call on a queue. Timeout is in nanoseconds: below zero
// waits for ever, zero not at all.
type Request struct {
	Op      byte
	ID      uint32
	Timeout int64
	Payload []byte
}

const requestHead = 1 + 4 + 8

// Head returns the bytes of r that precede its Payload in a frame:
// WriteFrame(w, r.Head(), r.Payload).
func (r *Request) Head() []byte {
	b := make([]byte, requestHead)
	b[0] = r.Op
	binary.BigEndian.PutUint32(b[1:], r.ID)
	binary.BigEndian.PutUint64(b[5:], uint64(r.Timeout))
	return b
}

// Encode returns r as a frame's payload.
func (r *Request) Encode() []byte { return append(r.Head(), r.Payload...) }

// ParseRequest parses a frame's payload; Payload aliases b.
func ParseRequest(b []byte) (*Request, error) {
	if len(b) < requestHead {
		return nil, fmt.Errorf("queue request of %d bytes, want at least %d", len(b), requestHead)
	}
	r := &Request{Op: b[0], ID: binary.BigEndian.Uint32(b[1:]), Timeout: int64(binary.BigEndian.Uint64(b[5:])), Payload: b[requestHead:]}
	switch r.Op {
	case OpPut, OpGet, OpSize, OpDone, OpJoin, OpUnget, OpHello:
	default:
		return nil, fmt.Errorf("unknown queue operation %q", r.Op)
	}
	return r, nil
}

// Reply answers the request with the same ID.
type Reply struct {
	ID      uint32
	Status  byte
	Payload []byte
}

const replyHead = 4 + 1

// Head returns the bytes of r that precede its Payload in a frame.
func (r *Reply) Head() []byte {
	b := make([]byte, replyHead)
	binary.BigEndian.PutUint32(b, r.ID)
	b[4] = r.Status
	return b
}

// Encode returns r as a frame's payload.
func (r *Reply) Encode() []byte { return append(r.Head(), r.Payload...) }

// ParseReply parses a frame's payload; Payload aliases b.
func ParseReply(b []byte) (*Reply, error) {
	if len(b) < replyHead {
		return nil, fmt.Errorf("queue reply of %d bytes, want at least %d", len(b), replyHead)
	}
	r := &Reply{ID: binary.BigEndian.Uint32(b), Status: b[4], Payload: b[replyHead:]}
	switch r.Status {
	case StatusOK, StatusItem, StatusEmpty, StatusFull, StatusClosed, StatusTaskDone, StatusError:
	case StatusSize:
		if len(r.Payload) != 8 {
			return nil, fmt.Errorf("queue size reply of %d bytes", len(r.Payload))
		}
	default:
		return nil, fmt.Errorf("unknown queue reply status %q", r.Status)
	}
	return r, nil
}
