//go:build unix

package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
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

	wmu      sync.Mutex
	deferred []byte // frames of Puts not yet written, under wmu (see holding)
	mu       sync.Mutex
	next     uint32
	pending  map[uint32]chan *wire.Reply // nil on a channel: read, if nobody does
	reading  bool
	err      error // why the connection ended, once it has
}

// dialQueue opens this process's connection to the broker behind door.
func dialQueue(door *os.File) (*queueClient, error) {
	ours, err := knock(door, doorConnect, unix.SOCK_STREAM, "queue connection")
	if err != nil {
		return nil, err
	}
	return &queueClient{door: door, conn: ours, in: bufio.NewReaderSize(ours, readBuffer), pending: map[uint32]chan *wire.Reply{}}, nil
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

// liveEnds are this process's queues made elsewhere, which a child
// flushes before it exits.
var liveEnds = struct {
	sync.Mutex
	set map[*remoteEnd]struct{}
}{set: map[*remoteEnd]struct{}{}}

// While this process holds items of a lane's batch (see laneReader.keep),
// it is working through a pile, and its small Puts into unbounded queues
// wait in their connection's deferred frames, to go in one write with
// those that follow. They are written before this process waits for
// anything from a queue, with any other request on their connection, when
// they fill deferMax, at the latest deferFor after the first, and before
// it exits: only a process whose exit runs FlushAll delays them.
var (
	deferring   atomic.Bool  // set by DeferPuts
	holding     atomic.Int64 // items held by this process's lane readers
	anyDeferred atomic.Bool  // some client has frames in deferredSet
	deferredMu  sync.Mutex
	deferredSet = map[*queueClient]struct{}{}
	deferTimer  *time.Timer // under deferredMu
)

const (
	deferMax = 16 << 10 // the most bytes of frames that wait in a connection
	deferFor = time.Millisecond
)

func deferPuts() { deferring.Store(true) }

// flushDeferred writes every Put this process delayed.
func flushDeferred() {
	if !anyDeferred.Load() {
		return
	}
	deferredMu.Lock()
	anyDeferred.Store(false)
	clients := make([]*queueClient, 0, len(deferredSet))
	for c := range deferredSet {
		clients = append(clients, c)
	}
	clear(deferredSet)
	deferredMu.Unlock()
	for _, c := range clients {
		c.wmu.Lock()
		_ = c.writeLocked(nil, nil)
		c.wmu.Unlock()
	}
}

// deferPut keeps the frame of a Put with no reply, head and parts, to
// write later, and reports whether it did: only while this process holds
// a batch's items, and only a small one.
func (c *queueClient) deferPut(head []byte, parts [][]byte) bool {
	if !deferring.Load() || holding.Load() <= 0 || partsLen(parts) > deferMax {
		return false
	}
	c.wmu.Lock()
	first := len(c.deferred) == 0
	c.deferred, _ = wire.AppendFrame(c.deferred, head, parts...)
	if len(c.deferred) >= deferMax {
		_ = c.writeLocked(nil, nil)
		first = false
	}
	c.wmu.Unlock()
	if first {
		deferredMu.Lock()
		deferredSet[c] = struct{}{}
		if !anyDeferred.Swap(true) {
			if deferTimer == nil {
				deferTimer = time.AfterFunc(deferFor, flushDeferred)
			} else {
				deferTimer.Reset(deferFor)
			}
		}
		deferredMu.Unlock()
	}
	return true
}

func partsLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// writeLocked writes the deferred frames, then the frame of a request's
// head and payload if head is not nil. The caller holds wmu.
func (c *queueClient) writeLocked(head []byte, payload [][]byte) error {
	if head != nil && len(c.deferred) == 0 && len(payload) == 1 {
		return wire.WriteFrame(c.conn, head, payload[0]) // the common case
	}
	if head != nil && partsLen(payload) <= deferMax {
		c.deferred, _ = wire.AppendFrame(c.deferred, head, payload...)
		head = nil
	}
	var err error
	if len(c.deferred) > 0 {
		_, err = c.conn.Write(c.deferred)
		c.deferred = c.deferred[:0]
	}
	if err == nil && head != nil {
		err = wire.WriteFrame(c.conn, append([][]byte{head}, payload...)...)
	}
	return err
}

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
	liveEnds.Lock()
	ends := make([]*remoteEnd, 0, len(liveEnds.set))
	for r := range liveEnds.set {
		ends = append(ends, r)
	}
	liveEnds.Unlock()
	for _, r := range ends {
		if l := r.currentLane(); l != nil {
			l.release()
		}
		r.flush()
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
	return c.callParts(op, timeout, [][]byte{payload}, noReply)
}

// callParts is call with a payload made of parts.
func (c *queueClient) callParts(op byte, timeout time.Duration, payload [][]byte, noReply bool) (*wire.Reply, error) {
	req := &wire.Request{Op: op, Timeout: int64(timeout)}
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
	if noReply && c.deferPut(req.Head(), payload) {
		return nil, nil
	}
	if !noReply {
		flushDeferred() // this call waits: what was put goes first
	}
	c.wmu.Lock()
	err := c.writeLocked(req.Head(), payload)
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
	if l != nil {
		l.giveBack = r.giveBack
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
	r := &remoteEnd{queueClient: c, maxsize: maxsize}
	liveEnds.Lock()
	liveEnds.set[r] = struct{}{}
	liveEnds.Unlock()
	return r, nil
}

func (r *remoteEnd) currentLane() *laneReader {
	r.laneMu.Lock()
	defer r.laneMu.Unlock()
	return r.lane
}

func (r *remoteEnd) Put(item []byte, timeout time.Duration) error {
	return r.PutParts([][]byte{item}, timeout)
}

func (r *remoteEnd) PutParts(parts [][]byte, timeout time.Duration) error {
	_, err := r.callParts(wire.OpPut, timeout, parts, r.maxsize == 0)
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

// giveBack puts items this process took out of the lane, and did not use,
// back at the head of the queue.
func (r *remoteEnd) giveBack(items [][]byte) error {
	msg := []byte{wire.LaneBatch}
	for _, item := range items {
		msg = wire.AppendLaneBatch(msg, item)
	}
	_, err := r.call(wire.OpUnget, 0, msg, false)
	return err
}

func (r *remoteEnd) Close() {
	r.laneMu.Lock()
	l := r.lane
	r.lane, r.dropped = nil, true
	r.laneMu.Unlock()
	if l != nil {
		l.close()
	}
	r.queueClient.close()
	liveEnds.Lock()
	delete(liveEnds.set, r)
	liveEnds.Unlock()
}

func (r *remoteEnd) Sync() { r.flush() }
