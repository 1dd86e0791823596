package multiprocessing

import (
	"errors"
	"sync"
	"time"
)

// queueCore is a queue's content, in the memory of the process that made
// the queue; other processes reach it through its broker. Items are
// encoded values. A timeout below zero waits for ever, zero not at all.
type queueCore struct {
	mu         sync.Mutex
	items      [][]byte
	maxsize    int
	getters    []chan []byte // waiting Gets, oldest first, each buffered
	putters    []*putter     // waiting Puts while the queue is full
	unfinished int           // items put and not yet marked done
	joiners    []chan struct{}
	closed     chan struct{}
	isClosed   bool
}

type putter struct {
	item     []byte
	accepted chan struct{}
}

var errTaskDone = errors.New("multiprocessing: TaskDone called more times than there were items")

func newQueueCore(maxsize int) *queueCore {
	return &queueCore{maxsize: maxsize, closed: make(chan struct{})}
}

// accept adds item, handing it straight to the oldest waiting Get if any.
// The caller holds mu.
func (c *queueCore) accept(item []byte) {
	c.unfinished++
	if len(c.getters) > 0 {
		g := c.getters[0]
		c.getters = c.getters[1:]
		g <- item
		return
	}
	c.items = append(c.items, item)
}

// put adds item, waiting for room in a full queue. gone, when closed, gives
// up the wait: its caller has left.
func (c *queueCore) put(item []byte, timeout time.Duration, gone <-chan struct{}) error {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return ErrQueueClosed
	}
	if c.maxsize <= 0 || len(c.items) < c.maxsize {
		c.accept(item)
		c.mu.Unlock()
		return nil
	}
	if timeout == 0 {
		c.mu.Unlock()
		return ErrFull
	}
	p := &putter{item: item, accepted: make(chan struct{})}
	c.putters = append(c.putters, p)
	c.mu.Unlock()
	if err := c.wait(p.accepted, timeout, gone, ErrFull); err != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, q := range c.putters {
			if q == p {
				c.putters = append(c.putters[:i], c.putters[i+1:]...)
				return err
			}
		}
		// Accepted while the wait ended.
	}
	return nil
}

// get removes the oldest item, waiting for one in an empty queue.
func (c *queueCore) get(timeout time.Duration, gone <-chan struct{}) ([]byte, error) {
	c.mu.Lock()
	if len(c.items) > 0 {
		item := c.items[0]
		c.items[0] = nil
		c.items = c.items[1:]
		if len(c.putters) > 0 {
			p := c.putters[0]
			c.putters = c.putters[1:]
			c.accept(p.item)
			close(p.accepted)
		}
		c.mu.Unlock()
		return item, nil
	}
	if c.isClosed {
		c.mu.Unlock()
		return nil, ErrQueueClosed
	}
	if timeout == 0 {
		c.mu.Unlock()
		return nil, ErrEmpty
	}
	ch := make(chan []byte, 1)
	c.getters = append(c.getters, ch)
	c.mu.Unlock()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	var err error
	select {
	case item := <-ch:
		return item, nil
	case <-expired:
		err = ErrEmpty
	case <-c.closed:
		err = ErrQueueClosed
	case <-gone:
		err = ErrQueueClosed
	}
	c.mu.Lock()
	for i, g := range c.getters {
		if g == ch {
			c.getters = append(c.getters[:i], c.getters[i+1:]...)
			c.mu.Unlock()
			return nil, err
		}
	}
	c.mu.Unlock()
	// An item was handed over as the wait ended.
	return <-ch, nil
}

// unget puts back at the head an item that could not be delivered.
func (c *queueCore) unget(item []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unfinished--
	if len(c.getters) > 0 {
		c.accept(item)
		return
	}
	c.unfinished++
	c.items = append([][]byte{item}, c.items...)
}

// wait waits for done, and returns onTimeout after timeout, ErrQueueClosed
// once the queue closes, or ErrQueueClosed when gone closes.
func (c *queueCore) wait(done <-chan struct{}, timeout time.Duration, gone <-chan struct{}, onTimeout error) error {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-done:
		return nil
	case <-expired:
		return onTimeout
	case <-c.closed:
		return ErrQueueClosed
	case <-gone:
		return ErrQueueClosed
	}
}

func (c *queueCore) qsize() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
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
func (c *queueCore) join(gone <-chan struct{}) error {
	c.mu.Lock()
	if c.unfinished == 0 {
		c.mu.Unlock()
		return nil
	}
	j := make(chan struct{})
	c.joiners = append(c.joiners, j)
	c.mu.Unlock()
	return c.wait(j, -1, gone, nil)
}

func (c *queueCore) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.isClosed {
		c.isClosed = true
		close(c.closed)
	}
}
