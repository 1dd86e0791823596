//go:build unix

package multiprocessing

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
		case errors.Is(err, ErrFull):
			_ = reply(id, wire.StatusFull, nil)
		case errors.Is(err, ErrEmpty):
			_ = reply(id, wire.StatusEmpty, nil)
		case errors.Is(err, ErrQueueClosed):
			_ = reply(id, wire.StatusClosed, nil)
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

// queueClient is a queue as a process other than its owner uses it.
//
// Calls that wait for a reply read the connection themselves, one at a
// time: the reader hands other calls their replies, and when it has its own
// it passes the reading on to a call still waiting. No goroutine sits
// between the socket and the caller, which on a busy machine saves a
// thread wakeup on every call.
type queueClient struct {
	door *os.File // sending end, to pass on to children
	conn *os.File
	in   *bufio.Reader // conn, read by the call that is reading

	wmu     sync.Mutex
	mu      sync.Mutex
	next    uint32
	pending map[uint32]chan *wire.Reply // nil on a channel: read, if nobody does
	reading bool
	err     error // why the connection ended, once it has
}

// dialQueue opens this process's connection to the broker behind door.
func dialQueue(door *os.File) (*queueClient, error) {
	ours, err := knock(door, doorConnect, unix.SOCK_STREAM, "queue connection")
	if err != nil {
		return nil, err
	}
	c := &queueClient{door: door, conn: ours, in: bufio.NewReaderSize(ours, readBuffer), pending: map[uint32]chan *wire.Reply{}}
	liveClients.Lock()
	liveClients.set[c] = struct{}{}
	liveClients.Unlock()
	return c, nil
}

// knock makes a socket pair of type typ, sends one end through door with
// what, a door message, and returns the other: the broker's answer comes
// over it.
func knock(door *os.File, what byte, typ int, name string) (*os.File, error) {
	ours, theirs, err := ownfd.Socketpair(typ, name, true, true)
	if err != nil {
		return nil, fmt.Errorf("multiprocessing: queue: %w", err)
	}
	err = fdpass.SendMsg(door, []byte{what}, ownfd.FD(theirs))
	ownfd.Close(theirs)
	if err != nil {
		ownfd.Close(ours)
		return nil, fmt.Errorf("%w: the process that made it has closed it or ended (%v)", ErrQueueClosed, err)
	}
	return ours, nil
}

// liveClients are this process's connections to brokers, which a child
// flushes before it exits.
var liveClients = struct {
	sync.Mutex
	set map[*queueClient]struct{}
}{set: map[*queueClient]struct{}{}}

// flush returns once the broker has taken every item this process put
// before the call: the broker handles a connection's requests in order, so
// the reply to a request sent now comes after them.
func (c *queueClient) flush() {
	_, _ = c.call(wire.OpSize, 0, nil, false)
}

// flushQueues makes sure that what this process put into queues is in them
// before it exits: Python's feeder threads, joined at exit. Without it, a
// parent that joined its producers could put an item that overtakes theirs.
func flushQueues() {
	liveClients.Lock()
	clients := make([]*queueClient, 0, len(liveClients.set))
	for c := range liveClients.set {
		clients = append(clients, c)
	}
	liveClients.Unlock()
	for _, c := range clients {
		c.flush()
	}
}

// await returns the reply to call id, reading the connection when no other
// call does.
func (c *queueClient) await(id uint32, ch chan *wire.Reply) (*wire.Reply, error) {
	for {
		c.mu.Lock()
		select {
		case r := <-ch:
			if r != nil {
				c.mu.Unlock()
				return r, nil
			}
		default:
		}
		if c.err != nil {
			delete(c.pending, id)
			c.mu.Unlock()
			return nil, ErrQueueClosed
		}
		if !c.reading {
			c.reading = true
			c.mu.Unlock()
			r, err := c.readUntil(id)
			c.mu.Lock()
			c.reading = false
			for _, other := range c.pending {
				select {
				case other <- nil:
				default:
				}
				break
			}
			c.mu.Unlock()
			return r, err
		}
		c.mu.Unlock()
		if r := <-ch; r != nil {
			return r, nil
		}
	}
}

// readUntil reads replies, handing each to its call, until the one to id.
func (c *queueClient) readUntil(id uint32) (*wire.Reply, error) {
	for {
		frame, err := wire.ReadFrame(c.in)
		var r *wire.Reply
		if err == nil {
			r, err = wire.ParseReply(frame)
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			delete(c.pending, id)
			for _, ch := range c.pending {
				select {
				case ch <- nil:
				default:
				}
			}
			c.mu.Unlock()
			return nil, ErrQueueClosed
		}
		c.mu.Lock()
		ch := c.pending[r.ID]
		delete(c.pending, r.ID)
		c.mu.Unlock()
		if r.ID == id {
			return r, nil
		}
		if ch != nil {
			ch <- r
		}
	}
}

// call sends a request and waits for its reply; with noReply it only sends.
func (c *queueClient) call(op byte, timeout time.Duration, payload []byte, noReply bool) (*wire.Reply, error) {
	req := &wire.Request{Op: op, Timeout: int64(timeout), Payload: payload}
	var ch chan *wire.Reply
	if !noReply {
		ch = make(chan *wire.Reply, 2)
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return nil, ErrQueueClosed
		}
		c.next++
		if c.next == 0 {
			c.next++
		}
		req.ID = c.next
		c.pending[req.ID] = ch
		c.mu.Unlock()
	}
	c.wmu.Lock()
	err := wire.WriteFrame(c.conn, req.Head(), req.Payload)
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		delete(c.pending, req.ID)
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %v", ErrQueueClosed, err)
	}
	if noReply {
		return nil, nil
	}
	r, err := c.await(req.ID, ch)
	if err != nil {
		return nil, err
	}
	switch r.Status {
	case wire.StatusFull:
		return nil, ErrFull
	case wire.StatusEmpty:
		return nil, ErrEmpty
	case wire.StatusClosed:
		return nil, ErrQueueClosed
	case wire.StatusError:
		return nil, errors.New(string(r.Payload))
	}
	return r, nil
}

func (c *queueClient) close() {
	c.flush()
	liveClients.Lock()
	delete(liveClients.set, c)
	liveClients.Unlock()
	ownfd.Close(c.conn)
	ownfd.Close(c.door)
}

func newOwnerEnd(core *queueCore) (queueEnd, error) {
	b, send, err := newBroker(core)
	if err != nil {
		return nil, err
	}
	return &ownerEnd{core: core, broker: b, send: send}, nil
}

func (o *ownerEnd) close() {
	o.broker.stop()
	ownfd.Close(o.send)
}

// remoteEnd is a queue in a process other than the one that made it.
type remoteEnd struct {
	*queueClient
	maxsize int

	laneMu  sync.Mutex
	lane    *laneReader // once asked for, if the queue has one
	noLane  bool        // the broker has none to give
	dropped bool        // closed: no lane to ask for any more
}

// reader returns the queue's lane, asking the broker for it on first use;
// nil when Gets are to ask the broker instead.
func (r *remoteEnd) reader() (*laneReader, error) {
	r.laneMu.Lock()
	defer r.laneMu.Unlock()
	switch {
	case r.dropped:
		return nil, ErrQueueClosed
	case r.lane != nil || r.noLane:
		return r.lane, nil
	case r.maxsize > 0:
		r.noLane = true // a bounded queue has none (see setLane): no need to ask
		return nil, nil
	}
	l, err := requestLane(r.queueClient.door)
	if err != nil {
		return nil, err
	}
	r.lane, r.noLane = l, l == nil
	return l, nil
}

func dialEnd(fd, maxsize int) (queueEnd, error) {
	door := ownfd.Adopt(fd, "queue door", true)
	c, err := dialQueue(door)
	if err != nil {
		ownfd.Close(door)
		return nil, err
	}
	return &remoteEnd{queueClient: c, maxsize: maxsize}, nil
}

func (r *remoteEnd) put(item []byte, timeout time.Duration) error {
	_, err := r.call(wire.OpPut, timeout, item, r.maxsize == 0)
	return err
}

func (r *remoteEnd) get(timeout time.Duration) ([]byte, error) {
	l, err := r.reader()
	if err != nil {
		return nil, err
	}
	if l != nil {
		return l.get(timeout)
	}
	rep, err := r.call(wire.OpGet, timeout, nil, false)
	if err != nil {
		return nil, err
	}
	return rep.Payload, nil
}

func (r *remoteEnd) qsize() int {
	rep, err := r.call(wire.OpSize, 0, nil, false)
	if err != nil {
		return 0
	}
	return int(binary.BigEndian.Uint64(rep.Payload))
}

func (r *remoteEnd) taskDone() error {
	_, err := r.call(wire.OpDone, 0, nil, false)
	if err != nil && err.Error() == errTaskDone.Error() {
		return errTaskDone
	}
	return err
}

func (r *remoteEnd) join() error {
	_, err := r.call(wire.OpJoin, -1, nil, false)
	return err
}

func (r *remoteEnd) door() *os.File { return r.queueClient.door }

func (r *remoteEnd) close() {
	r.laneMu.Lock()
	l := r.lane
	r.lane, r.dropped = nil, true
	r.laneMu.Unlock()
	if l != nil {
		l.close()
	}
	r.queueClient.close()
}

func (r *remoteEnd) sync() { r.flush() }

func (o *ownerEnd) sync() {}
