//go:build unix

package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// readBuffer lets one read take a frame's header and a small message at
// once.
const readBuffer = 16 << 10

// A queue lives in the process that made it: a queueCore, and a broker
// that serves it to the other processes. Each process that receives the
// queue opens its own stream connection to the broker by sending one end
// of a new socket pair through the queue's door, a datagram socket whose
// sending end is what travels to children. Every call is then a request
// frame on that connection and, unless it is a Put into an unbounded
// queue, a reply frame: the broker keeps the items, so a Put never waits
// for a reader and a child that put items nobody read exits at once.

// What a process sends through a queue's door, beside a descriptor: its
// connection to the broker, or a socket to send the lane over.
const (
	doorConnect = 0
	doorLane    = 'L'
)

// broker serves a queueCore to other processes.
type broker struct {
	core  *queueCore
	door  *os.File   // receiving end
	lane  *ownerLane // made at the first process's request; accept's own
	mu    sync.Mutex
	conns map[*os.File]struct{}
	done  bool
}

// newBroker starts serving core and returns the sending end of its door.
func newBroker(core *queueCore) (*broker, *os.File, error) {
	recv, send, err := ownfd.Socketpair(unix.SOCK_DGRAM, "queue door", true, true)
	if err != nil {
		return nil, nil, fmt.Errorf("multiprocessing: queue: %w", err)
	}
	b := &broker{core: core, door: recv, conns: map[*os.File]struct{}{}}
	go b.accept()
	return b, send, nil
}

func (b *broker) accept() {
	for {
		var data [1]byte
		_, fds, err := ownfd.Recv(b.door, data[:])
		if err != nil || len(fds) != 1 || data[0] != doorConnect && data[0] != doorLane {
			ownfd.CloseFDs(fds)
			if b.stopped() {
				return
			}
			continue // a malformed message: the sender gets no connection
		}
		if data[0] == doorLane {
			b.shareLane(ownfd.Adopt(fds[0], "queue lane request", true))
			continue
		}
		conn := ownfd.Adopt(fds[0], "queue connection", true)
		b.mu.Lock()
		if b.done {
			b.mu.Unlock()
			ownfd.Close(conn)
			return
		}
		b.conns[conn] = struct{}{}
		b.mu.Unlock()
		go b.serve(conn)
	}
}

// shareLane answers a request for the queue's lane over to, making the
// lane if this is the first. A queue that cannot have one (see setLane)
// answers with no descriptors, and that process's Gets ask the broker; a
// closed queue does not answer.
func (b *broker) shareLane(to *os.File) {
	defer ownfd.Close(to)
	if b.lane == nil {
		if l, err := newOwnerLane(); err == nil {
			if b.core.setLane(l) {
				b.lane = l
			} else {
				l.close()
			}
		}
	}
	if b.lane == nil {
		_ = fdpass.SendMsg(to, []byte{doorLane}) // no descriptors: ask the broker
		return
	}
	// Once the queue is closed this fails, and the asker sees the end of
	// its socket: ErrQueueClosed.
	_ = b.lane.share(to)
}

func (b *broker) stopped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// serve answers one process's requests until it closes its connection or
// sends garbage. A Put into an unbounded queue is done in order, in this
// loop, so that each producer's items stay first-in first-out; calls that
// may wait run on goroutines of their own, which end when the connection
// does.
func (b *broker) serve(conn *os.File) {
	in := bufio.NewReaderSize(conn, readBuffer)
	gone := make(chan struct{})
	var wmu sync.Mutex
	reply := func(id uint32, status byte, payload []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return wire.WriteFrame(conn, (&wire.Reply{ID: id, Status: status}).Head(), payload)
	}
	status := func(id uint32, err error) {
		switch {
		case err == nil:
			_ = reply(id, wire.StatusOK, nil)
		case errors.Is(err, mperr.ErrFull):
			_ = reply(id, wire.StatusFull, nil)
		case errors.Is(err, mperr.ErrEmpty):
			_ = reply(id, wire.StatusEmpty, nil)
		case errors.Is(err, mperr.ErrQueueClosed):
			_ = reply(id, wire.StatusClosed, nil)
		case errors.Is(err, errTaskDone):
			_ = reply(id, wire.StatusTaskDone, nil)
		default:
			_ = reply(id, wire.StatusError, []byte(err.Error()))
		}
	}
	for {
		frame, err := wire.ReadFrame(in)
		if err != nil {
			break
		}
		req, err := wire.ParseRequest(frame)
		if err != nil {
			break
		}
		timeout := time.Duration(req.Timeout)
		switch req.Op {
		case wire.OpPut:
			if req.ID == 0 {
				_ = b.core.put(req.Payload, -1, gone)
				continue
			}
			go func() { status(req.ID, b.core.put(req.Payload, timeout, gone)) }()
		case wire.OpGet:
			id := req.ID
			b.core.getFor(conn, timeout,
				func(item []byte) bool { return reply(id, wire.StatusItem, item) == nil },
				func(err error) { status(id, err) })
		case wire.OpSize:
			_ = reply(req.ID, wire.StatusSize, binary.BigEndian.AppendUint64(nil, uint64(b.core.qsize())))
		case wire.OpDone:
			status(req.ID, b.core.taskDone())
		case wire.OpUnget:
			items, _, err := wire.ParseLane(req.Payload, 0)
			if err == nil {
				b.core.ungetAll(items)
			}
			status(req.ID, err)
		case wire.OpJoin:
			go func() { status(req.ID, b.core.join(gone)) }()
		}
	}
	close(gone)
	b.core.forget(conn)
	b.mu.Lock()
	delete(b.conns, conn)
	b.mu.Unlock()
	wmu.Lock()
	ownfd.Close(conn)
	wmu.Unlock()
}

// stop closes the door and every connection: the queue is closed for all.
func (b *broker) stop() {
	b.mu.Lock()
	b.done = true
	conns := b.conns
	b.conns = map[*os.File]struct{}{}
	b.mu.Unlock()
	b.core.close()
	ownfd.Close(b.door)
	for c := range conns {
		// Unblocks serve's read; serve closes it.
		_ = c.SetDeadline(time.Now())
	}
}

func newOwnerEnd(core *queueCore) (End, error) {
	b, send, err := newBroker(core)
	if err != nil {
		return nil, err
	}
	return &ownerEnd{core: core, broker: b, send: send}, nil
}

func (o *ownerEnd) Close() {
	o.broker.stop()
	ownfd.Close(o.send)
	o.stopSharing()
}
