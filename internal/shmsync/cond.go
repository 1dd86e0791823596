package shmsync

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/shm"
)

// A Cond's room: a sequence word that sleepers wait on, the number of the
// last waiter to enter, then a slot a waiter: its owner word, its state,
// and its number, by which Notify wakes the oldest first.
const (
	condHeader = 16
	slotSize   = 16
	// CondSlots is how many may wait on a Cond at once.
	CondSlots = 1024
	// CondSize is the room a Cond takes.
	CondSize = condHeader + CondSlots*slotSize
)

// A slot's states.
const (
	slotFree = iota
	slotWaiting
	slotNotified
)

// ErrTooManyWaiters is Enter's error when every slot has a live waiter.
var ErrTooManyWaiters = errors.New("multiprocessing: more than 1024 waiters on a Condition")

// A Cond is a condition variable whose lock the caller holds around Enter,
// Leave and Notify. Each waiter has a slot, which Notify marks: a notify
// goes to waiters that were waiting when it came, oldest first, never to a
// later one, and never to a waiter whose process has died. A notifier
// never waits for a waiter.
type Cond struct {
	seq, last *atomic.Uint32
	seg       *shm.Segment
	off       int
}

// NewCond is the Cond at offset off of s.
func NewCond(s *shm.Segment, off int) Cond {
	return Cond{seq: s.Uint32(off), last: s.Uint32(off + 4), seg: s, off: off}
}

func (c Cond) owner(i int) *atomic.Uint64 { return c.seg.Uint64(c.off + condHeader + i*slotSize) }
func (c Cond) state(i int) *atomic.Uint32 { return c.seg.Uint32(c.off + condHeader + i*slotSize + 8) }
func (c Cond) order(i int) *atomic.Uint32 { return c.seg.Uint32(c.off + condHeader + i*slotSize + 12) }

// Enter takes a slot for the caller, with the lock held, and returns it
// and the sequence to Sleep on once the caller has let the lock go. The
// slots of dead waiters are taken back when no slot is free.
func (c Cond) Enter() (slot int, seq uint32, err error) {
	for try := range 2 {
		for i := range CondSlots {
			if c.state(i).Load() == slotFree {
				c.owner(i).Store(shm.Self())
				c.order(i).Store(c.last.Add(1))
				c.state(i).Store(slotWaiting)
				return i, c.seq.Load(), nil
			}
		}
		if try == 0 {
			for i := range CondSlots {
				owner := c.owner(i).Load()
				if c.state(i).Load() != slotFree && !shm.Alive(int(owner>>32), owner) {
					c.state(i).Store(slotFree)
				}
			}
		}
	}
	return 0, 0, ErrTooManyWaiters
}

// Sleep waits, without the lock, until slot is notified (true), or until
// deadline or stop, as Mutex.Lock.
func (c Cond) Sleep(slot int, seq uint32, deadline time.Time, stop *atomic.Bool) bool {
	for c.state(slot).Load() != slotNotified {
		sleep, ok := until(time.Now(), deadline, time.Now().Add(time.Hour), stop)
		if !ok {
			return false
		}
		shm.Wait(c.seq, seq, sleep)
		seq = c.seq.Load()
	}
	return true
}

// Leave frees slot, with the lock held again, and reports whether it was
// notified: a notify that came as a Sleep timed out counts.
func (c Cond) Leave(slot int) bool {
	notified := c.state(slot).Load() == slotNotified
	c.state(slot).Store(slotFree)
	return notified
}

// Notify notifies up to n waiters, oldest first, with the lock held, and
// wakes them. The slot of a waiter that has died is freed instead.
func (c Cond) Notify(n int) {
	var waiting []int
	for i := range CondSlots {
		if c.state(i).Load() == slotWaiting {
			waiting = append(waiting, i)
		}
	}
	slices.SortFunc(waiting, func(a, b int) int {
		return int(int32(c.order(a).Load() - c.order(b).Load()))
	})
	notified := 0
	for _, i := range waiting {
		if notified == n {
			break
		}
		if owner := c.owner(i).Load(); !shm.Alive(int(owner>>32), owner) {
			c.state(i).Store(slotFree)
			continue
		}
		c.state(i).Store(slotNotified)
		notified++
	}
	if notified > 0 {
		c.seq.Add(1)
		shm.Wake(c.seq, 1<<30)
	}
}

// Waiting is the number of waiters not yet notified.
func (c Cond) Waiting() int {
	n := 0
	for i := range CondSlots {
		if c.state(i).Load() == slotWaiting {
			n++
		}
	}
	return n
}

// Interrupt wakes every sleeper, as Mutex.Interrupt.
func (c Cond) Interrupt() { shm.Wake(c.seq, 1<<30) }
