package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// A queue served over a network speaks the broker's requests and replies
// (wire.Request, wire.Reply), one message each over a Stream, one
// call at a time. Nothing is sent unasked: a call that would wait longer
// than netSlice is made of calls of netSlice each, so that a server that
// vanished without a word is noticed within netSlice and netGrace.
const (
	netSlice = time.Second
	netGrace = 5 * time.Second
	// watchEvery is how often a server that waits for an item asks
	// whether its client is still there.
	watchEvery = 100 * time.Millisecond
)

// Serve answers the calls of the client on s from end, a queue of
// maxsize, until the client goes, its call breaks the protocol, or stop is
// closed; the caller then interrupts s's reads (netconn.Stream.Interrupt),
// which ends a wait for the next call, and a call under way is answered
// first.
// A client that goes in the middle of a Get may lose the item that Get
// took, as a consumer killed there does.
func Serve(end End, maxsize int, s Stream, stop <-chan struct{}) error {
	// A reply that does not move for netGrace ends the service: a client
	// that does not read cannot hold it.
	s.SetIdle(0, netGrace)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		msg, err := s.Recv()
		if err != nil {
			return err
		}
		req, err := wire.ParseRequest(msg)
		if err != nil {
			return err
		}
		timeout := time.Duration(req.Timeout)
		if timeout < 0 || timeout > netSlice {
			timeout = netSlice
		}
		var reply wire.Reply
		switch req.Op {
		case wire.OpHello:
			reply = sizeReply(maxsize)
		case wire.OpSize:
			reply = sizeReply(end.Qsize())
		case wire.OpPut:
			reply = statusOf(end.Put(req.Payload, timeout))
		case wire.OpDone:
			reply = statusOf(end.TaskDone())
		case wire.OpJoin:
			reply = joinReply(end, timeout)
		case wire.OpGet:
			item, err := watchedGet(end, timeout, s, stop)
			if errors.Is(err, errClientGone) {
				return nil
			}
			reply = statusOf(err)
			if err == nil {
				reply = wire.Reply{Status: wire.StatusItem, Payload: item}
			}
		default:
			reply = wire.Reply{Status: wire.StatusError, Payload: fmt.Appendf(nil, "%q is not served over a network", req.Op)}
		}
		if err := s.Send(reply.Head(), reply.Payload); err != nil {
			return err
		}
	}
}

var errClientGone = errors.New("the client went")

// watchedGet is end.Get that asks, every watchEvery, whether the client on
// s is still there (it sends nothing while it waits, so a readable s means
// it has gone), and whether stop is closed, which it answers as a closed
// queue.
func watchedGet(end End, timeout time.Duration, s Stream, stop <-chan struct{}) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		item, err := end.Get(max(min(left, watchEvery), 0))
		if !errors.Is(err, mperr.ErrEmpty) || left <= watchEvery {
			return item, err
		}
		select {
		case <-stop:
			return nil, mperr.ErrQueueClosed
		default:
		}
		if gone, _ := s.Poll(0); gone {
			return nil, errClientGone
		}
	}
}

// joinReply answers a Join: StatusOK once every item is done,
// StatusEmpty while some are not after timeout (the client asks again).
func joinReply(end End, timeout time.Duration) wire.Reply {
	o, ok := end.(*ownerEnd)
	if !ok {
		return wire.Reply{Status: wire.StatusError, Payload: []byte("Join is served by the queue's maker only")}
	}
	err := o.joinWithin(timeout)
	if errors.Is(err, errJoinWaits) {
		return wire.Reply{Status: wire.StatusEmpty}
	}
	return statusOf(err)
}

func sizeReply(n int) wire.Reply {
	return wire.Reply{Status: wire.StatusSize, Payload: binary.BigEndian.AppendUint64(nil, uint64(n))}
}

func statusOf(err error) wire.Reply {
	switch {
	case err == nil:
		return wire.Reply{Status: wire.StatusOK}
	case errors.Is(err, mperr.ErrEmpty):
		return wire.Reply{Status: wire.StatusEmpty}
	case errors.Is(err, mperr.ErrFull):
		return wire.Reply{Status: wire.StatusFull}
	case errors.Is(err, mperr.ErrQueueClosed):
		return wire.Reply{Status: wire.StatusClosed}
	case errors.Is(err, errTaskDone):
		return wire.Reply{Status: wire.StatusTaskDone}
	}
	return wire.Reply{Status: wire.StatusError, Payload: []byte(err.Error())}
}

// netEnd is a queue served by another program, over s.
type netEnd struct {
	mu     sync.Mutex // one call at a time
	s      Stream
	broken error  // the first failure of the connection: every later call's
	where  string // a loopback queue's Share, passed on to grandchildren
}

// Stream is what a queue served over a network travels on: messages, both
// ways, as netconn.Stream frames them, with bounds on their progress.
type Stream interface {
	Send(parts ...[]byte) error
	Recv() ([]byte, error)
	Poll(timeout time.Duration) (bool, error)
	// SetIdle bounds each read and each piece of a write to the given
	// time of no progress; Expect lets the next read wait until t.
	SetIdle(read, write time.Duration)
	Expect(t time.Time)
	Close() error
}

// MaxNetItem is the largest item that travels over a Stream.
const MaxNetItem = 1 << 30

// DialNet opens the queue served over s (see Serve) and returns its End
// and maxsize. The End owns s. where is what a child needs to reach the
// queue too, a loopback queue's address (see Loopback), or "" for a queue
// that is not passed on.
func DialNet(s Stream, where string) (End, int, error) {
	s.SetIdle(netGrace, netGrace)
	e := &netEnd{s: s, where: where}
	reply, err := e.call(wire.OpHello, 0, nil)
	if err != nil {
		s.Close()
		return nil, 0, err
	}
	if reply.Status != wire.StatusSize {
		s.Close()
		return nil, 0, fmt.Errorf("a queue's server answered hello with %q", reply.Status)
	}
	return e, int(binary.BigEndian.Uint64(reply.Payload)), nil
}

// call makes one call. Its request and reply may take as long as they
// need while they move (each piece within netGrace), and the reply may
// take netGrace beyond the time the server may wait to begin.
func (e *netEnd) call(op byte, timeout time.Duration, parts [][]byte) (*wire.Reply, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.callLocked(op, timeout, parts)
}

func (e *netEnd) callLocked(op byte, timeout time.Duration, parts [][]byte) (*wire.Reply, error) {
	if e.broken != nil {
		return nil, e.broken
	}
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	if size > MaxNetItem {
		return nil, fmt.Errorf("%w: an item of %d bytes for a queue served over a network", wire.ErrFrameTooLarge, size)
	}
	req := wire.Request{Op: op, Timeout: int64(timeout)}
	err := e.s.Send(append([][]byte{req.Head()}, parts...)...)
	var msg []byte
	if err == nil {
		e.s.Expect(time.Now().Add(max(timeout, 0) + netGrace))
		msg, err = e.s.Recv()
	}
	var reply *wire.Reply
	if err == nil {
		reply, err = wire.ParseReply(msg)
	}
	if err != nil {
		e.broken = fmt.Errorf("%w: the connection to its server: %v", mperr.ErrQueueClosed, err)
		e.s.Close()
		return nil, e.broken
	}
	return reply, nil
}

// slices calls op until it gets an answer other than wait, each call for
// at most netSlice, for timeout in all (below zero: for ever).
func (e *netEnd) slices(op byte, timeout time.Duration, parts [][]byte, wait byte) (*wire.Reply, error) {
	deadline := time.Now().Add(timeout)
	for {
		slice := netSlice
		if timeout >= 0 {
			slice = max(min(time.Until(deadline), netSlice), 0)
		}
		reply, err := e.call(op, slice, parts)
		if err != nil || reply.Status != wait || timeout >= 0 && !time.Now().Before(deadline) {
			return reply, err
		}
	}
}

func replyError(r *wire.Reply) error {
	switch r.Status {
	case wire.StatusOK, wire.StatusItem, wire.StatusSize:
		return nil
	case wire.StatusEmpty:
		return mperr.ErrEmpty
	case wire.StatusFull:
		return mperr.ErrFull
	case wire.StatusClosed:
		return mperr.ErrQueueClosed
	}
	return fmt.Errorf("the queue's server: %s", r.Payload)
}

func (e *netEnd) Put(item []byte, timeout time.Duration) error {
	return e.PutParts([][]byte{item}, timeout)
}

func (e *netEnd) PutParts(parts [][]byte, timeout time.Duration) error {
	reply, err := e.slices(wire.OpPut, timeout, parts, wire.StatusFull)
	if err != nil {
		return err
	}
	return replyError(reply)
}

func (e *netEnd) Get(timeout time.Duration) ([]byte, error) {
	var reply *wire.Reply
	var err error
	if timeout == 0 {
		// A GetNowait beside a Get that waits: empty, as for a process
		// other than the queue's maker.
		if !e.mu.TryLock() {
			return nil, mperr.ErrEmpty
		}
		reply, err = e.callLocked(wire.OpGet, 0, nil)
		e.mu.Unlock()
	} else {
		reply, err = e.slices(wire.OpGet, timeout, nil, wire.StatusEmpty)
	}
	if err != nil {
		return nil, err
	}
	return reply.Payload, replyError(reply)
}

func (e *netEnd) Qsize() int {
	reply, err := e.call(wire.OpSize, 0, nil)
	if err != nil || reply.Status != wire.StatusSize {
		return 0
	}
	return int(binary.BigEndian.Uint64(reply.Payload))
}

func (e *netEnd) TaskDone() error {
	reply, err := e.call(wire.OpDone, 0, nil)
	if err != nil {
		return err
	}
	if reply.Status == wire.StatusTaskDone {
		return errTaskDone
	}
	return replyError(reply)
}

// Share passes on the address of a loopback queue; a queue served to
// other programs is not passed to children.
func (e *netEnd) Share() (string, error) {
	if e.where == "" {
		return "", fmt.Errorf("%w: a queue from DialQueue cannot be passed to a child; pass its address", mperr.ErrUnsupported)
	}
	return e.where, nil
}

// Join waits, a second at a time, until every item put has been
// TaskDone'd.
func (e *netEnd) Join() error {
	reply, err := e.slices(wire.OpJoin, -1, nil, wire.StatusEmpty)
	if err != nil {
		return err
	}
	return replyError(reply)
}

// Close closes this client's connection; the queue stays, for the others.
func (e *netEnd) Close() { e.s.Close() }

func (e *netEnd) Door() *os.File { return nil }

// Sync returns at once: a Put has its answer before it returns.
func (e *netEnd) Sync() {}
