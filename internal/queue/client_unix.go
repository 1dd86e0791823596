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
		return nil, fmt.Errorf("%w: the process that made it has closed it or ended (%v)", mperr.ErrQueueClosed, err)
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
			return nil, mperr.ErrQueueClosed
		}
		if !c.reading {
			c.reading = true
			c.mu.Unlock()
			r, err := c.readUntil(id)
			c.mu.Lock()
			c.reading = false
			c.passReadingOnLocked()
			c.mu.Unlock()
			return r, err
		}
		c.mu.Unlock()
		if r := <-ch; r != nil {
			return r, nil
		}
	}
}

// passReadingOnLocked wakes one call that still waits for its reply,
// whichever the map gives first, to take over the reading: a nil on its
// channel sends it round await's loop, where it finds nobody reading. One
// is enough, as the new reader hands the others their replies. A channel
// that already holds a wakeup needs no second one. The caller holds mu.
func (c *queueClient) passReadingOnLocked() {
	for _, other := range c.pending {
		select {
		case other <- nil:
		default:
		}
		return
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
			return nil, mperr.ErrQueueClosed
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
			return nil, mperr.ErrQueueClosed
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
		return nil, fmt.Errorf("%w: %v", mperr.ErrQueueClosed, err)
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
		return nil, mperr.ErrFull
	case wire.StatusEmpty:
		return nil, mperr.ErrEmpty
	case wire.StatusClosed:
		return nil, mperr.ErrQueueClosed
	case wire.StatusTaskDone:
		return nil, errTaskDone
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
		return nil, mperr.ErrQueueClosed
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

func dialEnd(fd, maxsize int) (End, error) {
	door := ownfd.Adopt(fd, "queue door", true)
	c, err := dialQueue(door)
	if err != nil {
		ownfd.Close(door)
		return nil, err
	}
	return &remoteEnd{queueClient: c, maxsize: maxsize}, nil
}

func (r *remoteEnd) Put(item []byte, timeout time.Duration) error {
	_, err := r.call(wire.OpPut, timeout, item, r.maxsize == 0)
	return err
}

func (r *remoteEnd) Get(timeout time.Duration) ([]byte, error) {
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

func (r *remoteEnd) Qsize() int {
	rep, err := r.call(wire.OpSize, 0, nil, false)
	if err != nil {
		return 0
	}
	return int(binary.BigEndian.Uint64(rep.Payload))
}

func (r *remoteEnd) TaskDone() error {
	_, err := r.call(wire.OpDone, 0, nil, false)
	return err
}

func (r *remoteEnd) Join() error {
	_, err := r.call(wire.OpJoin, -1, nil, false)
	return err
}

func (r *remoteEnd) Door() *os.File { return r.queueClient.door }

func (r *remoteEnd) Close() {
	r.laneMu.Lock()
	l := r.lane
	r.lane, r.dropped = nil, true
	r.laneMu.Unlock()
	if l != nil {
		l.close()
	}
	r.queueClient.close()
}

func (r *remoteEnd) Sync() { r.flush() }
