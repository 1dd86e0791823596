//go:build unix

package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/bulk"
	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// A lane carries an unbounded queue's items from the process that made it
// to the other processes that get from it, so that a Get there reads its
// item itself instead of asking the broker and waiting for the answer: one
// wakeup per item instead of two. It is a pair of sequenced-packet
// sockets. Only the owner holds the sending end; every process that gets
// from the queue shares the receiving end, and the kernel hands each
// message, whole, to exactly one reader. An item larger than
// wire.LaneInlineMax rides as a memory file on its message. A word of
// shared memory counts the items taken out, by any process, so that the
// owner knows how many are still in the lane.
//
// The owner makes the lane when another process first asks for it, at that
// process's first Get, so a queue that only its owner reads has none and
// costs no more than before. Put never waits on it: an item the lane has
// no room for waits in the owner's memory, and a goroutine moves it in
// when there is room.
//
// The sending end is in the owner's poller, as a Pipe's end is: when
// another process takes an item, the room it makes wakes this process,
// just before that process answers, and on a virtual machine that early
// wake is what makes the answer's own wakeup faster (BenchmarkQueueRoundTrip,
// against the end kept out; the README has the figures).
// It is also what the feeder waits on when the lane is full. The receiving
// end stays out of the owner's poller, which its own writes would wake.

// ownerLane is a queue's lane in the process that made the queue. Its
// lane methods run under the queue core's lock, but for feed and close.
type ownerLane struct {
	in      *os.File // the sending end, in the poller
	out     *os.File // the receiving end, out of it
	counter *os.File // the memory file of the shared count
	mem     []byte   // counter, mapped
	taken   *uint64  // in mem: items taken out of the lane
	sent    uint64   // items sent
	buf     []byte
	batch   []byte // the message being made of several items
	files   bulk.Writer
	big     *os.File   // the memory file of an item the lane had no room for
	bigDone func(bool) // what ends its Write
	bigItem []byte     // that item

	mu     sync.Mutex
	closed bool
}

func newOwnerLane() (*ownerLane, error) {
	counter, mem, err := newCounter()
	if err != nil {
		return nil, err
	}
	in, out, err := ownfd.Socketpair(unix.SOCK_SEQPACKET, "queue lane", true, false)
	if err != nil {
		ownfd.Close(counter)
		_ = unix.Munmap(mem)
		return nil, err
	}
	return &ownerLane{
		in:      in,
		out:     out,
		counter: counter,
		mem:     mem,
		taken:   counterWord(mem),
		buf:     make([]byte, wire.LaneMessageMax),
	}, nil
}

// newCounter makes the memory file of a lane's shared count, and maps it.
func newCounter() (*os.File, []byte, error) {
	f, err := ownfd.Memfd("mpgo-queue-count")
	if err != nil {
		return nil, nil, err
	}
	size := os.Getpagesize()
	if err := f.Truncate(int64(size)); err != nil {
		ownfd.Close(f)
		return nil, nil, err
	}
	mem, err := unix.Mmap(ownfd.FD(f), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		ownfd.Close(f)
		return nil, nil, err
	}
	return f, mem, nil
}

// counterWord is the shared count in a mapped counter: the mapping is page
// aligned, so the word is 8-byte aligned as atomics need.
func counterWord(mem []byte) *uint64 { return (*uint64)(unsafe.Pointer(&mem[0])) }

// readersWord is the next word of the counter's page: how many times the
// owner has given the lane out, which is how many processes read it (or
// more, if one holds two handles on the queue).
func readersWord(mem []byte) *uint64 { return (*uint64)(unsafe.Pointer(&mem[8])) }

// closedWord is the third: nonzero once the owner has closed the queue, so
// that a reader does not hand out the rest of a batch after that.
func closedWord(mem []byte) *uint64 { return (*uint64)(unsafe.Pointer(&mem[16])) }

// send sends items[0] in one message, with as many of the items after it
// as fit in that message too, and returns how many it sent: several only
// when the caller offers them, which it does when the lane was full (see
// queueCore.batchLocked).
func (l *ownerLane) send(items [][]byte) (int, error) {
	if len(items[0]) > wire.LaneInlineMax {
		if err := l.sendFile(items[:1], items[0]); err != nil {
			return 0, err
		}
		return 1, nil
	}
	n, room := 1, wire.LaneInlineMax-wire.LaneBatchRoom(items[0])
	for n < len(items) && wire.LaneBatchRoom(items[n]) <= room {
		room -= wire.LaneBatchRoom(items[n])
		n++
	}
	msg := [][]byte{{wire.LaneInline}, items[0]}
	if n > 1 {
		l.batch = append(l.batch[:0], wire.LaneBatch)
		for _, item := range items[:n] {
			l.batch = wire.AppendLaneBatch(l.batch, item)
		}
		msg = [][]byte{l.batch}
	}
	if err := sendLaneMessage(l.in, msg, nil); err != nil {
		return 0, err
	}
	l.sent += uint64(n)
	return n, nil
}

func (l *ownerLane) sendParts(parts [][]byte) error {
	if size := partsLen(parts); size <= wire.LaneInlineMax {
		_, err := l.send([][]byte{bytes.Join(parts, nil)})
		return err
	}
	return l.sendFile(parts, nil)
}

// sendFile sends the item made of parts in a memory file. item is that
// item as the queue keeps it, or nil if it does not: when the lane has no
// room, the file of a kept item stays for the next try, which is the same
// item, as the feeder moves items oldest first.
func (l *ownerLane) sendFile(parts [][]byte, item []byte) error {
	if l.big != nil && (item == nil || !sameBytes(l.bigItem, item)) {
		l.endBig(false)
	}
	if l.big == nil {
		f, done, err := l.files.Write(parts...)
		if err != nil {
			return err
		}
		l.big, l.bigDone, l.bigItem = f, done, item
	}
	err := sendLaneMessage(l.in, [][]byte{wire.LaneFileHead(partsLen(parts))}, unix.UnixRights(ownfd.FD(l.big)))
	if err == nil {
		l.sent++
	}
	if err != errLaneFull || item == nil {
		l.endBig(err == nil) // in the lane, the message holds the file
	}
	return err
}

// endBig ends the Write of the memory file of an item, sent or not.
func (l *ownerLane) endBig(sent bool) {
	if l.big != nil {
		l.bigDone(sent)
		l.big, l.bigDone, l.bigItem = nil, nil, nil
	}
}

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// sendLaneMessage sends one message without waiting: errLaneFull when the
// lane has no room for it.
func sendLaneMessage(f *os.File, bufs [][]byte, oob []byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.SendmsgBuffers(int(fd), bufs, oob, nil, unix.MSG_DONTWAIT)
	}); err != nil {
		return err
	}
	if serr == unix.EAGAIN {
		return errLaneFull
	}
	return serr
}

func (l *ownerLane) recv() ([][]byte, error) {
	return readLaneItems(l.out, l.buf, l.taken, false)
}

// unread counts the items sent and not yet counted as taken: those in the
// lane, and those of a message a reader took and has not counted yet.
func (l *ownerLane) unread() int { return int(l.sent - atomic.LoadUint64(l.taken)) }

// pending counts the items in the lane: unread, but none once the lane is
// empty, as a reader killed after it took a message and before it counted
// it leaves them unread for ever.
func (l *ownerLane) pending() int {
	n := l.unread()
	if n > 0 && !l.queued() {
		return 0
	}
	return n
}

func (l *ownerLane) queued() bool { return socketHolds(ownfd.FD(l.out)) }

func (l *ownerLane) readers() int { return int(atomic.LoadUint64(readersWord(l.mem))) }

func (l *ownerLane) took() uint64 { return atomic.LoadUint64(l.taken) }

func (l *ownerLane) feed(fill func() error) {
	rc, err := l.in.SyscallConn()
	if err != nil {
		return
	}
	for {
		var ferr error
		// The poller calls again once the lane has more room. The attempt
		// must be made in here, after the poller has been told to watch,
		// or room made just before would go unseen.
		werr := rc.Write(func(uintptr) bool {
			ferr = fill()
			return ferr != errLaneFull
		})
		if werr != nil || ferr == nil {
			return // the lane closed, or nothing is left to move
		}
		// No memory file for a large item (out of descriptors, say).
		time.Sleep(feedRetry)
	}
}

// feedRetry is how long the feeder waits after an error other than a full
// lane before it tries again.
const feedRetry = 10 * time.Millisecond

// share sends the receiving end and the counter to a process that asked.
func (l *ownerLane) share(to *os.File) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return mperr.ErrQueueClosed
	}
	// Counted first: the reader reads the count after it has the lane.
	atomic.AddUint64(readersWord(l.mem), 1)
	return fdpass.SendMsg(to, []byte{doorLane}, ownfd.FD(l.out), ownfd.FD(l.counter))
}

// close empties the lane, so that no process gets an item from a closed
// queue, and closes its ends: the readers see the end of the lane. The
// caller does not hold the core's lock, which a feeder that is about to
// let go of the sending end may wait for.
func (l *ownerLane) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	atomic.StoreUint64(closedWord(l.mem), 1)
	for l.unread() > 0 {
		if _, err := l.recv(); err == errLaneEmpty {
			break
		}
	}
	l.endBig(false)
	l.files.Close()
	ownfd.Close(l.in)
	ownfd.Close(l.out)
	ownfd.Close(l.counter)
	_ = unix.Munmap(l.mem)
}

// readLaneItems takes one message out of a lane, waiting for it if wait
// is set, counts its items in taken, and returns them. Without wait, an
// empty lane gives errLaneEmpty; the end of the lane (its owner closed it,
// or ended) gives ErrQueueClosed.
func readLaneItems(f *os.File, buf []byte, taken *uint64, wait bool) ([][]byte, error) {
	recv := ownfd.TryRecv
	if wait {
		recv = ownfd.Recv
	}
	n, fds, err := recv(f, buf)
	return laneItems(buf, n, fds, err, taken)
}

// laneItems are the items of a lane's message that a receive of n bytes
// and fds into buf returned, or the receive's error, as readLaneItems
// gives them.
func laneItems(buf []byte, n int, fds []int, err error, taken *uint64) ([][]byte, error) {
	switch {
	case err == unix.EAGAIN:
		return nil, errLaneEmpty
	case err == io.EOF:
		return nil, mperr.ErrQueueClosed
	case err != nil:
		return nil, err
	}
	items, size, err := wire.ParseLane(bytes.Clone(buf[:n]), len(fds))
	atomic.AddUint64(taken, uint64(max(len(items), 1)))
	if err != nil {
		ownfd.CloseFDs(fds)
		return nil, fmt.Errorf("multiprocessing: queue lane: %w", err)
	}
	if len(fds) == 0 {
		return items, nil
	}
	defer ownfd.CloseFDs(fds)
	item, err := bulk.Read(fds[0], size, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("multiprocessing: queue lane: %w", err)
	}
	return [][]byte{item}, nil
}

// laneReader is a queue's lane in a process that gets from it.
//
// While this process is the lane's only reader, a Get waits for its item
// in Go's poller, which is fastest. Once the owner has given the lane to
// another process too, the next Get here takes the lane out of the poller
// and waits with a laneWaiter instead: every process with the lane in its
// poller wakes for every item, whether it waits or not, so that with many
// workers waiting on one queue each task's round trip costs several
// times as much, and more processor still (BenchmarkQueueWorkers).
type laneReader struct {
	file    *os.File      // the shared receiving end, in this process's poller; nil once out of it
	fd      int           // that end, once out of the poller
	wait    *laneWaiter   // set when the end leaves the poller
	mem     []byte        // the counter, mapped
	taken   *uint64       // in mem
	readers *uint64       // in mem
	turn    chan struct{} // holds the token while no Get reads
	buf     []byte        // under the turn
	// deadline is set when a read deadline is; under the turn.
	deadline bool
	closed   bool // under the turn

	// held is what is left of the last batch, which the next Gets hand
	// out; under the turn. giveBack puts it back at the head of the queue
	// when this process closes the queue or exits.
	held     [][]byte
	giveBack func([][]byte) error

	mu      sync.Mutex  // orders close and leaving the poller
	closing atomic.Bool // close has begun: a failed read means closed
}

// requestLane asks the broker behind door for its queue's lane: nil, and no
// error, when it has none to give (a bounded queue, or a system without
// memory files).
func requestLane(door *os.File) (*laneReader, error) {
	ours, err := knock(door, doorLane, unix.SOCK_SEQPACKET, "queue lane request")
	if err != nil {
		return nil, err
	}
	defer ownfd.Close(ours)
	var answer [1]byte
	_, fds, err := ownfd.Recv(ours, answer[:])
	switch {
	case err == io.EOF:
		return nil, mperr.ErrQueueClosed
	case err != nil:
		return nil, fmt.Errorf("multiprocessing: queue: asking for its lane: %w", err)
	case len(fds) == 0:
		return nil, nil
	case len(fds) != 2 || answer[0] != doorLane:
		ownfd.CloseFDs(fds)
		return nil, fmt.Errorf("multiprocessing: queue: a lane sent as %q with %d descriptors", answer[0], len(fds))
	}
	mem, err := unix.Mmap(fds[1], 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	ownfd.CloseFDs(fds[1:])
	if err != nil {
		ownfd.CloseFDs(fds[:1])
		return nil, fmt.Errorf("multiprocessing: queue: mapping its lane's counter: %w", err)
	}
	r := &laneReader{
		file:    ownfd.Adopt(fds[0], "queue lane", true),
		fd:      -1,
		mem:     mem,
		taken:   counterWord(mem),
		readers: readersWord(mem),
		turn:    make(chan struct{}, 1),
		buf:     make([]byte, wire.LaneMessageMax),
	}
	r.turn <- struct{}{}
	return r, nil
}

// get takes the next item out of the lane; a timeout below zero waits for
// ever, zero not at all. One Get of this process reads at a time.
func (r *laneReader) get(timeout time.Duration) ([]byte, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if timeout == 0 {
		select {
		case <-r.turn:
		default:
			return nil, mperr.ErrEmpty // another Get is reading: the lane was empty
		}
	} else {
		expired, stop := expiry(timeout)
		select {
		case <-r.turn:
			stop()
		case <-expired:
			return nil, mperr.ErrEmpty
		}
	}
	defer func() { r.turn <- struct{}{} }()
	if r.closed {
		return nil, mperr.ErrQueueClosed
	}
	if len(r.held) > 0 {
		if atomic.LoadUint64(closedWord(r.mem)) == 0 {
			return r.handOut(), nil
		}
		r.dropHeld() // the owner closed the queue: the read finds its end
	}
	if timeout != 0 {
		flushDeferred() // this process may wait: what it put goes now
	}
	if r.wait == nil && atomic.LoadUint64(r.readers) > 1 {
		r.leavePoller()
	}
	if r.wait != nil {
		return r.getExclusive(timeout, deadline)
	}
	// A deadline left over from a timed Get would fail the read at once.
	if timeout > 0 || r.deadline {
		_ = r.file.SetReadDeadline(deadline)
		r.deadline = timeout > 0
	}
	items, err := readLaneItems(r.file, r.buf, r.taken, timeout != 0)
	switch {
	case err == nil:
		return r.keep(items), nil
	case r.closing.Load():
		// (The poller's error for a closed file, which os.File's own
		// methods would turn into os.ErrClosed, comes bare through
		// SyscallConn.)
		return nil, mperr.ErrQueueClosed
	case err == errLaneEmpty, errors.Is(err, os.ErrDeadlineExceeded):
		return nil, mperr.ErrEmpty
	}
	return nil, err
}

// getExclusive is get once the lane is out of this process's poller.
func (r *laneReader) getExclusive(timeout time.Duration, deadline time.Time) ([]byte, error) {
	for {
		n, fds, err := ownfd.TryRecvFD(r.fd, r.buf)
		items, err := laneItems(r.buf, n, fds, err, r.taken)
		switch {
		case err == nil:
			return r.keep(items), nil
		case err != errLaneEmpty:
			return nil, err
		case r.closing.Load():
			return nil, mperr.ErrQueueClosed
		case timeout == 0:
			return nil, mperr.ErrEmpty
		}
		if more, err := r.wait.wait(deadline); err != nil {
			return nil, err
		} else if !more {
			return nil, mperr.ErrEmpty
		}
	}
}

// keep returns the first of the items of a message and holds the rest for
// the next Gets. Under the turn.
func (r *laneReader) keep(items [][]byte) []byte {
	if len(items) > 1 {
		r.held = items[1:]
		holding.Add(int64(len(r.held)))
	}
	return items[0]
}

// handOut returns the oldest item held. Under the turn.
func (r *laneReader) handOut() []byte {
	item := r.held[0]
	r.held[0] = nil
	r.held = r.held[1:]
	holding.Add(-1)
	return item
}

// returnHeld gives back the items held, to the head of the queue. Under
// the turn.
func (r *laneReader) returnHeld() {
	if len(r.held) == 0 {
		return
	}
	items := r.dropHeld()
	if r.giveBack != nil && !r.closed {
		_ = r.giveBack(items) // it fails only once the queue is closed
	}
}

// dropHeld lets go of the items held and returns them. Under the turn.
func (r *laneReader) dropHeld() [][]byte {
	items := r.held
	r.held = nil
	holding.Add(-int64(len(items)))
	return items
}

// release gives back what is held unless a Get is under way: for a
// process that is about to exit.
func (r *laneReader) release() {
	select {
	case <-r.turn:
		r.returnHeld()
		r.turn <- struct{}{}
	default:
	}
}

// leavePoller moves this process's end of the lane out of Go's poller, to
// wait on it with a laneWaiter. Under the turn; if it fails, the end stays.
func (r *laneReader) leavePoller() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing.Load() {
		return // the Get will find the end closed
	}
	fd, err := ownfd.Dup(r.file)
	if err != nil {
		return
	}
	wait, err := newLaneWaiter(fd)
	if err != nil {
		ownfd.CloseFDs([]int{fd})
		return
	}
	// (Closing the poller's copy takes the file out of the poller; the
	// file description stays open, non-blocking, as the other readers
	// need it.)
	ownfd.Close(r.file)
	r.file, r.fd, r.wait = nil, fd, wait
}

// close closes this process's end, ending a Get that waits on it.
func (r *laneReader) close() {
	r.mu.Lock()
	r.closing.Store(true)
	if r.wait != nil {
		r.wait.stop()
	} else {
		ownfd.Close(r.file)
	}
	r.mu.Unlock()
	<-r.turn
	r.returnHeld()
	r.closed = true
	if r.wait != nil {
		r.wait.close()
		ownfd.CloseFDs([]int{r.fd})
	}
	_ = unix.Munmap(r.mem)
	r.turn <- struct{}{}
}
