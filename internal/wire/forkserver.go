package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
)

// The forkserver, the process that asked for it (its client) and the warm
// children it keeps exchange messages over sequenced-packet sockets, one
// packet each, descriptors riding along with SCM_RIGHTS. Every message has
// the same head: a kind, a pid and a code, then data.

// Message kinds.
const (
	// Server to client, then client to server, then server to client: the
	// authkey challenge in both directions (Data: nonce; mac and nonce;
	// mac). Denied ends a connection whose client failed it.
	FSChallenge = 'C'
	FSAnswer    = 'R'
	FSProof     = 'K'
	FSDenied    = 'D'
	// Client to server: a ticket, please (Code FSUrgent: a start waits for
	// it).
	// Server to client: a ticket for a warm child, Pid (descriptors: its
	// control socket, its bootstrap socket, then a pidfd of it where the
	// system has them).
	FSStart   = 'S'
	FSStarted = 'P'
	// Server to client, instead of a ticket: the child Pid that was to be
	// it ended with Code before it was ready (it did not call Init), or,
	// with Pid 0, no child could be started (Code: errno).
	FSFailed = 'F'
	// Server to client: child Pid ended with exit code Code (-N: signal N).
	FSExit = 'X'
	// Server to warm child: Data is the token of its marker. Warm child to
	// server: ready, waiting in Init. (What starts it is not a message of
	// these: its bootstrap frame, over its bootstrap socket.)
	FSHello = 'H'
	FSReady = 'W'
)

// FSUrgent is the Code of an FSStart that a start waits for.
const FSUrgent = 1

// FSNonce is the size of a challenge's nonce and of an HMAC-SHA256.
const FSNonce = 32

// FSMaxMessage bounds a forkserver message: a reader's buffer.
const FSMaxMessage = fsHead + 2*FSNonce

const fsHead = 1 + 4 + 4

// FSMessage is one forkserver message.
type FSMessage struct {
	Kind byte
	Pid  int
	Code int
	Data []byte
}

// Encode returns m as a packet.
func (m FSMessage) Encode() []byte {
	b := make([]byte, fsHead, fsHead+len(m.Data))
	b[0] = m.Kind
	binary.BigEndian.PutUint32(b[1:], uint32(int32(m.Pid)))
	binary.BigEndian.PutUint32(b[5:], uint32(int32(m.Code)))
	return append(b, m.Data...)
}

// ParseFS decodes a packet written by Encode, checking its kind and the
// size of its data.
func ParseFS(b []byte) (FSMessage, error) {
	if len(b) < fsHead {
		return FSMessage{}, fmt.Errorf("forkserver message of %d bytes, want at least %d", len(b), fsHead)
	}
	m := FSMessage{
		Kind: b[0],
		Pid:  int(int32(binary.BigEndian.Uint32(b[1:]))),
		Code: int(int32(binary.BigEndian.Uint32(b[5:]))),
		Data: b[fsHead:],
	}
	want := 0
	switch m.Kind {
	case FSChallenge, FSProof:
		want = FSNonce
	case FSAnswer:
		want = 2 * FSNonce
	case FSHello:
		want = -1 // a token of any length up to the maximum
	case FSDenied, FSStart, FSStarted, FSFailed, FSExit, FSReady:
	default:
		return FSMessage{}, fmt.Errorf("unknown forkserver message %q", m.Kind)
	}
	if want >= 0 && len(m.Data) != want {
		return FSMessage{}, fmt.Errorf("forkserver message %q with %d bytes of data, want %d", m.Kind, len(m.Data), want)
	}
	if len(b) > FSMaxMessage {
		return FSMessage{}, fmt.Errorf("forkserver message of %d bytes, at most %d", len(b), FSMaxMessage)
	}
	if (m.Kind == FSStarted || m.Kind == FSExit) && m.Pid <= 0 || m.Kind == FSFailed && m.Pid < 0 {
		return FSMessage{}, fmt.Errorf("forkserver message %q for pid %d", m.Kind, m.Pid)
	}
	return m, nil
}

// ServerBoot is the bootstrap message of a forkserver.
type ServerBoot struct {
	Token     string // must equal the token of the environment marker
	Key       []byte // the authkey every connection must prove
	Dir       string // the private directory of the listening socket
	Listener  int    // the listening socket's descriptor
	ParentPid int
}

// EncodeServerBoot encodes b for WriteFrame.
func EncodeServerBoot(b *ServerBoot) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeServerBoot decodes a frame written by EncodeServerBoot.
func DecodeServerBoot(frame []byte) (*ServerBoot, error) {
	var b ServerBoot
	if err := gob.NewDecoder(bytes.NewReader(frame)).Decode(&b); err != nil {
		return nil, fmt.Errorf("forkserver bootstrap message: %w", err)
	}
	if len(b.Key) != FSNonce || b.Dir == "" || b.Listener < 3 {
		return nil, fmt.Errorf("forkserver bootstrap message: key of %d bytes, directory %q, listener %d", len(b.Key), b.Dir, b.Listener)
	}
	return &b, nil
}
