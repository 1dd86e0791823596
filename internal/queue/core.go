package queue

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/mpgo/multiprocessing/internal/mperr"
)

// queueCore is a queue's content, in the memory of the process that made
// the queue; other processes reach it through its broker. Items are
// encoded values. A timeout below zero waits for ever, zero not at all.
type queueCore struct {
	mu         sync.Mutex
	items      [][]byte
	maxsize    int
	getters    []*getter // waiting Gets, oldest first
	putters    []*putter // waiting Puts while the queue is full
	unfinished int       // items put and not yet marked done
	joiners    []chan struct{}
	closed     chan struct{}
	isClosed   bool
	parkers    int      // made by newParker and not closed: at most maxParkers
	spare      []parker // of those, the ones no Get waits on
	lane       lane     // nil until another process gets from the queue
	feeding    bool     // a goroutine moves items into the lane
	// When the feeder last found room in the lane, how many items had been
	// taken out by then, and whether they went fast (see batchLocked).
	lastRoom    time.Time
	tookThen    uint64
	fastTaken   bool
	alwaysBatch bool // for tests: as if they always went fast
}

// A lane carries the items that no Get of this process waits for to the
// processes that get from the queue, which read them without asking (see
// lane_unix.go). Once a queue has one, its items are in the lane, oldest
// first, and only those the lane had no room for wait in items. Its
// methods but feed and close are called under the core's lock.
type lane interface {
	// send sends items[0], with as many of the others as fit in one
	// message, and returns how many it sent; errLaneFull when the lane
	// has no room.
	send(items [][]byte) (int, error)
	// sendParts sends the one item made of parts, if the lane has room;
	// errLaneFull if not. The parts stay the caller's.
	sendParts(parts [][]byte) error
	recv() ([][]byte, error) // one message's items; errLaneEmpty when nothing is in it
	// unread counts the items sent and not yet counted as taken, by any
	// process: a guess, kept without a system call, of whether recv
	// finds one. pending is the count for Qsize.
	unread() int
	pending() int
	readers() int // processes the lane was given to
	took() uint64 // items taken out, by any process, ever
	// feed calls fill until it returns nil (done) or the lane closes:
	// when fill returns errLaneFull, once the lane has more room; after
	// any other error, in a while. The caller holds no lock; fill takes
	// the core's.
	feed(fill func() error)
	close() // without the core's lock, which feed's fill takes
}

var (
	errLaneFull  = errors.New("multiprocessing: queue lane is full")
	errLaneEmpty = errors.New("multiprocessing: queue lane is empty")
)

// A getter waits for an item. A Get in this process waits on park, and
// whoever hands it the item does so under the core's lock: it sets item
// and got, then notifies park. A Get from another process is answered by
// deliver, called by whoever hands the item over, so that no goroutine
// sits between the Put and the reply.
type getter struct {
	park    parker
	pooled  bool // park is one of the queue's own
	item    []byte
	got     bool
	deliver func([]byte) bool // false: the item could not be delivered
	expire  func(error)       // the remote wait ended without an item
	timer   *time.Timer
	owner   any // the connection of a remote getter
}

type putter struct {
	item     []byte
	accepted chan struct{}
}

var errTaskDone = errors.New("multiprocessing: TaskDone called more times than there were items")

func newQueueCore(maxsize int) *queueCore {
	return &queueCore{maxsize: maxsize, closed: make(chan struct{})}
}

// accept adds item, or gives it to the oldest waiting getter: at once if
// that is a Get of this process, else the caller hands it over with
// handOver once it has released mu. The caller holds mu.
func (c *queueCore) accept(item []byte) *getter {
	c.unfinished++
	if len(c.getters) > 0 {
		g := c.getters[0]
		c.getters = c.getters[1:]
		if g.park != nil {
			g.item, g.got = item, true
			g.park.notify()
			return nil
		}
		return g
	}
	if c.lane != nil && len(c.items) == 0 {
		if n, _ := c.lane.send([][]byte{item}); n == 1 {
			return nil
		}
		// No room (or no memory file for a large item): it waits in
		// items, and the feeder moves it into the lane.
	}
	c.items = append(c.items, item)
	c.feedLocked()
	return nil
}

// feedLocked moves the items that wait into the lane as far as it has
// room, and starts the goroutine that moves the rest, unless there is no
// lane or it runs already. The caller holds mu.
func (c *queueCore) feedLocked() {
	if c.lane == nil || c.feeding || c.fillLocked() == nil {
		return
	}
	c.feeding = true
	go c.lane.feed(c.fillLane)
}

// fillLocked moves items into the lane, oldest first, until none is left
// (nil) or one does not go in. The caller holds mu.
func (c *queueCore) fillLocked() error {
	for len(c.items) > 0 {
		n, err := c.lane.send(c.items[:c.batchLocked()])
		if err != nil {
			return err
		}
		clear(c.items[:n])
		c.items = c.items[n:]
	}
	return nil
}

// batchLocked is how many of the items that wait may go into the lane in
// one message, which one reader takes whole and hands out to its next
// Gets. Items wait only once the lane is full, its readers all behind.
// Then, if they took the items out faster than one per fastItem, a
// message carries up to MaxBatch items, but never more than a reader's
// share of those waiting; otherwise one. So a batch saves most of the cost
// of each item where that cost matters, and where items take their
// readers long, none is held by a busy reader while another waits idle.
// The caller holds mu.
func (c *queueCore) batchLocked() int {
	if !c.fastTaken && !c.alwaysBatch {
		return 1
	}
	readers := max(c.lane.readers(), 1)
	return min(MaxBatch, (len(c.items)+readers-1)/readers)
}

const (
	// MaxBatch is the most items one message of a lane carries: a
	// process that gets from the queue holds at most MaxBatch-1 items
	// beyond those its Gets returned, and one killed loses at most
	// MaxBatch.
	MaxBatch = 16
	// fastItem is the time per item below which readers get batches.
	fastItem = 50 * time.Microsecond
)

// fillLane is the feeder's fillLocked: nil once it is done, because nothing
// is left to move or the queue is closed.
func (c *queueCore) fillLane() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.isClosed {
		now, took := time.Now(), c.lane.took()
		if took > c.tookThen {
			c.fastTaken = now.Sub(c.lastRoom) < time.Duration(took-c.tookThen)*fastItem
			c.lastRoom, c.tookThen = now, took
		}
		if err := c.fillLocked(); err != nil {
			return err
		}
	}
	c.feeding = false
	return nil
}

// setLane gives the queue the lane l, made because another process asked,
// and starts moving into it the items that wait. It reports false, and
// leaves l alone, when the queue already has one, is closed, or is
// bounded: a bounded queue counts every item taken to let a waiting Put
// in, so its Gets ask the broker.
func (c *queueCore) setLane(l lane) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lane != nil || c.isClosed || c.maxsize > 0 {
		return false
	}
	c.lane = l
	c.feedLocked()
	return true
}

func (c *queueCore) handOver(g *getter, item []byte) {
	if g == nil {
		return
	}
	if g.timer != nil {
		g.timer.Stop()
	}
	deliver := func() {
		if !g.deliver(item) {
			c.unget(item)
		}
	}
	// A small reply fits in the socket's buffer; a large one would make
	// the Put wait for the reader to take it.
	if len(item) > smallItem {
		go deliver()
	} else {
		deliver()
	}
}

// smallItem is the largest item a Put writes to a waiting reader itself.
const smallItem = 64 << 10

// put adds item, waiting for room in a full queue. gone, when closed, gives
// up the wait: its caller has left.
func (c *queueCore) put(item []byte, timeout time.Duration, gone <-chan struct{}) error {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return mperr.ErrQueueClosed
	}
	if c.maxsize <= 0 || len(c.items) < c.maxsize {
		g := c.accept(item)
		c.mu.Unlock()
		c.handOver(g, item)
		return nil
	}
	if timeout == 0 {
		c.mu.Unlock()
		return mperr.ErrFull
	}
	p := &putter{item: item, accepted: make(chan struct{})}
	c.putters = append(c.putters, p)
	c.mu.Unlock()
	if err := c.wait(p.accepted, timeout, gone, mperr.ErrFull); err != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if drop(&c.putters, p) {
			return err
		}
		// Accepted while the wait ended.
	}
	return nil
}

// putParts is put of an item made of parts, which stay the caller's. An
// item the lane takes at once, as no other waits and no Get does, goes
// there without a copy of its own: a large one is copied only into its
// memory file.
func (c *queueCore) putParts(parts [][]byte, timeout time.Duration) error {
	c.mu.Lock()
	if !c.isClosed && c.lane != nil && len(c.items) == 0 && len(c.getters) == 0 {
		if c.lane.sendParts(parts) == nil {
			c.unfinished++
			c.mu.Unlock()
			return nil
		}
	}
	c.mu.Unlock()
	return c.put(bytes.Join(parts, nil), timeout, nil)
}

// takeLocked removes the oldest item: from the lane, whose items are older
// than those in items, else from items. It reports false when there is
// none; an error when the lane held one that could not be read (it is
// gone). The caller holds mu.
func (c *queueCore) takeLocked() ([]byte, bool, error) {
	if c.lane != nil && c.lane.unread() > 0 {
		items, err := c.lane.recv()
		switch {
		case err == nil:
			if len(items) > 1 {
				// The rest of a batch goes back, for any process.
				c.requeueLocked(items[1:])
			}
			return items[0], true, nil
		case err != errLaneEmpty:
			return nil, true, err
		}
		// Other processes took what was there.
	}
	if len(c.items) == 0 {
		return nil, false, nil
	}
	return c.take(), true, nil
}

// take removes the oldest item of items, letting a waiting Put in. The
// caller holds mu and has checked that there is an item.
func (c *queueCore) take() []byte {
	item := c.items[0]
	c.items[0] = nil
	c.items = c.items[1:]
	if len(c.putters) > 0 {
		p := c.putters[0]
		c.putters = c.putters[1:]
		c.accept(p.item) // the queue was full: no getter waits
		close(p.accepted)
	}
	return item
}

// get removes the oldest item, waiting for one in an empty queue.
func (c *queueCore) get(timeout time.Duration) ([]byte, error) {
	c.mu.Lock()
	if item, ok, err := c.takeLocked(); ok {
		c.mu.Unlock()
		return item, err
	}
	if c.isClosed {
		c.mu.Unlock()
		return nil, mperr.ErrQueueClosed
	}
	if timeout == 0 {
		c.mu.Unlock()
		return nil, mperr.ErrEmpty
	}
	g := &getter{}
	g.park, g.pooled = c.parkerLocked()
	c.getters = append(c.getters, g)
	c.mu.Unlock()
	notified := g.park.wait(timeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	// Whatever ended the wait, an item may have come since: then it is
	// this Get's.
	drop(&c.getters, g)
	c.releaseLocked(g, !notified)
	switch {
	case g.got:
		return g.item, nil
	case c.isClosed:
		return nil, mperr.ErrQueueClosed
	}
	return nil, mperr.ErrEmpty
}

// parkerLocked returns a parker for a Get that is to wait, and whether it
// is one of the queue's own (made by newParker), which it keeps for later
// Gets. Beyond maxParkers Gets waiting at once, the others wait on
// channels: an eventfd each would let a crowd of waiting goroutines use
// up the descriptors the program needs for other things.
func (c *queueCore) parkerLocked() (parker, bool) {
	if n := len(c.spare); n > 0 {
		p := c.spare[n-1]
		c.spare = c.spare[:n-1]
		return p, true
	}
	if c.parkers < maxParkers {
		c.parkers++
		return newParker(), true
	}
	return newChanParker(), false
}

// releaseLocked takes back the parker of g, a Get that has stopped
// waiting, draining a notification the wait did not take. A getter is
// notified once at most, under mu, so none can come after.
func (c *queueCore) releaseLocked(g *getter, drain bool) {
	if drain {
		g.park.drain()
	}
	switch {
	case !g.pooled:
	case c.isClosed:
		g.park.close()
		c.parkers--
	default:
		c.spare = append(c.spare, g.park)
	}
}

// maxParkers is how many parkers of its own a queue makes at most.
const maxParkers = 4

// getFor is get for another process: it returns at once, and deliver or
// expire answers later (or at once).
func (c *queueCore) getFor(owner any, timeout time.Duration, deliver func([]byte) bool, expire func(error)) {
	c.mu.Lock()
	if item, ok, err := c.takeLocked(); ok {
		c.mu.Unlock()
		if err != nil {
			expire(err)
		} else if !deliver(item) {
			c.unget(item)
		}
		return
	}
	if c.isClosed || timeout == 0 {
		closed := c.isClosed
		c.mu.Unlock()
		if closed {
			expire(mperr.ErrQueueClosed)
		} else {
			expire(mperr.ErrEmpty)
		}
		return
	}
	g := &getter{deliver: deliver, expire: expire, owner: owner}
	if timeout > 0 {
		g.timer = time.AfterFunc(timeout, func() {
			if c.remove(g) {
				expire(mperr.ErrEmpty)
			}
		})
	}
	c.getters = append(c.getters, g)
	c.mu.Unlock()
}

// remove takes g off the waiting getters, and reports whether it was still
// waiting (if not, an item is on its way to it).
func (c *queueCore) remove(g *getter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return drop(&c.getters, g)
}

// drop removes w from a list of waiters and reports whether it was there.
func drop[W comparable](list *[]W, w W) bool {
	i := slices.Index(*list, w)
	if i < 0 {
		return false
	}
	*list = slices.Delete(*list, i, i+1)
	return true
}

// forget drops the waiting getters of a connection that has closed.
func (c *queueCore) forget(owner any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.getters = slices.DeleteFunc(c.getters, func(g *getter) bool {
		if g.owner != owner {
			return false
		}
		if g.timer != nil {
			g.timer.Stop()
		}
		return true
	})
}

// unget puts back at the head an item that could not be delivered.
func (c *queueCore) unget(item []byte) { c.ungetAll([][]byte{item}) }

// ungetAll puts items back at the head, in their order: they were taken
// out and not used (a batch that a process gave back, say). They were
// counted in unfinished when they were put, and stay counted once.
func (c *queueCore) ungetAll(items [][]byte) {
	type handOff struct {
		g    *getter
		item []byte
	}
	var handOffs []handOff
	c.mu.Lock()
	// A Get that waits finds the queue empty: give it the oldest.
	for len(items) > 0 && len(c.getters) > 0 {
		c.unfinished-- // accept counts it again
		if g := c.accept(items[0]); g != nil {
			handOffs = append(handOffs, handOff{g, items[0]})
		}
		items = items[1:]
	}
	if len(items) > 0 {
		c.requeueLocked(items)
	}
	c.mu.Unlock()
	for _, h := range handOffs {
		c.handOver(h.g, h.item)
	}
}

// requeueLocked puts items, taken out of the lane and not used, back at
// the head, in their order. What the lane still holds is newer: it comes
// out, behind them, and they all go into the lane again as it has room.
// The caller holds mu.
func (c *queueCore) requeueLocked(items [][]byte) {
	var inLane [][]byte
	for c.lane != nil && c.lane.unread() > 0 {
		more, err := c.lane.recv()
		if err == errLaneEmpty {
			break
		}
		inLane = append(inLane, more...)
	}
	c.items = slices.Concat(items, inLane, c.items)
	c.feedLocked()
}

// wait waits for done, and returns onTimeout after timeout, ErrQueueClosed
// once the queue closes or gone closes.
func (c *queueCore) wait(done <-chan struct{}, timeout time.Duration, gone <-chan struct{}, onTimeout error) error {
	expired, stop := expiry(timeout)
	defer stop()
	select {
	case <-done:
		return nil
	case <-expired:
		return onTimeout
	case <-c.closed:
		return mperr.ErrQueueClosed
	case <-gone:
		return mperr.ErrQueueClosed
	}
}

// expiry returns a channel that receives once timeout has passed, or nil
// (never) for a timeout below zero, and what stops its timer.
func expiry(timeout time.Duration) (<-chan time.Time, func() bool) {
	if timeout < 0 {
		return nil, func() bool { return false }
	}
	t := time.NewTimer(timeout)
	return t.C, t.Stop
}

func (c *queueCore) qsize() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.items)
	if c.lane != nil {
		n += c.lane.pending()
	}
	return n
}

func (c *queueCore) taskDone() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unfinished <= 0 {
		return errTaskDone
	}
	c.unfinished--
	if c.unfinished == 0 {
		for _, j := range c.joiners {
			close(j)
		}
		c.joiners = nil
	}
	return nil
}

// join waits until every item put has been marked done.
func (c *queueCore) join(gone <-chan struct{}) error { return c.joinWithin(-1, gone) }

// errJoinWaits is joinWithin's error when items are still unfinished.
var errJoinWaits = errors.New("items are still unfinished")

// joinWithin is join for at most timeout (below zero: for ever); then
// errJoinWaits.
func (c *queueCore) joinWithin(timeout time.Duration, gone <-chan struct{}) error {
	c.mu.Lock()
	if c.unfinished == 0 {
		c.mu.Unlock()
		return nil
	}
	j := make(chan struct{})
	c.joiners = append(c.joiners, j)
	c.mu.Unlock()
	return c.wait(j, timeout, gone, errJoinWaits)
}

// close ends every wait: remote getters are told the queue is closed.
func (c *queueCore) close() {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return
	}
	c.isClosed = true
	close(c.closed)
	remote := slices.DeleteFunc(c.getters, func(g *getter) bool {
		if g.park != nil {
			g.park.notify()
			return true
		}
		return false
	})
	c.getters = nil
	for _, p := range c.spare {
		p.close()
	}
	c.parkers -= len(c.spare)
	c.spare = nil
	l := c.lane
	c.lane = nil // its counter is unmapped at close
	c.mu.Unlock()
	if l != nil {
		l.close()
	}
	for _, g := range remote {
		if g.timer != nil {
			g.timer.Stop()
		}
		g.expire(mperr.ErrQueueClosed)
	}
}
