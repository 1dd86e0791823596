package shmsync

import (
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/shm"
)

// CondSize is the room a Cond takes: a sequence word that sleepers wait
// on, and a word of two counts: the waiters (high half) and the wakeups
// handed out and not yet taken (low half).
const CondSize = 16

// A Cond is a condition variable whose lock the caller holds around Enter,
// Leave and Notify. A notifier never waits for a waiter: a waiter that died
// leaves at most a wakeup that a later waiter takes at once, and blocks
// nothing.
type Cond struct {
	seq    *atomic.Uint32
	counts *atomic.Uint64
}

// NewCond is the Cond at offset off of s.
func NewCond(s *shm.Segment, off int) Cond {
	return Cond{seq: s.Uint32(off), counts: s.Uint64(off + 8)}
}

// Enter counts the caller among the waiters, with the lock held, and
// returns the sequence to Sleep on once it has let the lock go.
func (c Cond) Enter() uint32 {
	c.counts.Add(1 << 32)
	return c.seq.Load()
}

// Sleep waits, without the lock, until the caller takes a wakeup (true),
// or until deadline or stop, as Mutex.Lock.
func (c Cond) Sleep(seq uint32, deadline time.Time, stop *atomic.Bool) bool {
	for {
		if c.take() {
			return true
		}
		sleep, ok := until(time.Now(), deadline, time.Now().Add(time.Hour), stop)
		if !ok {
			return false
		}
		shm.Wait(c.seq, seq, sleep)
		seq = c.seq.Load()
	}
}

// take takes a wakeup, if there is one, and uncounts the caller.
func (c Cond) take() bool {
	for {
		n := c.counts.Load()
		if uint32(n) == 0 {
			return false
		}
		if c.counts.CompareAndSwap(n, n-1<<32-1) {
			return true
		}
	}
}

// Leave is for a waiter whose Sleep returned false, once it holds the lock
// again: it takes a wakeup that came meanwhile (true), or uncounts itself.
func (c Cond) Leave() bool {
	for {
		n := c.counts.Load()
		if uint32(n) > 0 {
			if c.counts.CompareAndSwap(n, n-1<<32-1) {
				return true
			}
			continue
		}
		if c.counts.CompareAndSwap(n, n-1<<32) {
			return false
		}
	}
}

// Notify hands out wakeups to up to n waiters that have none, with the
// lock held, and wakes as many sleepers.
func (c Cond) Notify(n int) {
	for {
		counts := c.counts.Load()
		waiting, woken := uint32(counts>>32), uint32(counts)
		if waiting <= woken || n <= 0 {
			return
		}
		k := min(uint32(n), waiting-woken)
		if c.counts.CompareAndSwap(counts, counts+uint64(k)) {
			c.seq.Add(1)
			shm.Wake(c.seq, int(k))
			return
		}
	}
}

// Waiting is the number of waiters without a wakeup.
func (c Cond) Waiting() int {
	n := c.counts.Load()
	return int(uint32(n>>32) - uint32(n))
}

// Interrupt wakes every sleeper, as Mutex.Interrupt.
func (c Cond) Interrupt() { shm.Wake(c.seq, 1<<30) }
