package shmsync

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/shm"
)

// A Barrier's room: its Mutex, then the generation word (the generation's
// number times two, plus one while it is broken), the count of parties
// waiting, the parties, a ring of the last 32 generations' outcomes (bit
// set: it passed), then one owner word a party, for the waiting ones.
const barrierHeader = MutexSize + 16

// BarrierSize is the room a Barrier for parties takes.
func BarrierSize(parties int) int { return barrierHeader + 8*parties }

// A Barrier lets parties wait for each other. A waiting party that dies
// breaks it, as a timeout does, and the others get ErrBrokenBarrier.
type Barrier struct {
	mu                            Mutex
	gen, count, parties, outcomes *atomic.Uint32
	seg                           *shm.Segment
	off                           int
}

// NewBarrier is the Barrier at offset off of s.
func NewBarrier(s *shm.Segment, off int) Barrier {
	return Barrier{
		mu:       NewMutex(s, off),
		gen:      s.Uint32(off + MutexSize),
		count:    s.Uint32(off + MutexSize + 4),
		parties:  s.Uint32(off + MutexSize + 8),
		outcomes: s.Uint32(off + MutexSize + 12),
		seg:      s,
		off:      off,
	}
}

// Init sets a new Barrier's parties.
func (b Barrier) Init(parties int) { b.parties.Store(uint32(parties)) }

// Parties is the number of parties the barrier waits for.
func (b Barrier) Parties() int { return int(b.parties.Load()) }

func (b Barrier) party(i uint32) *atomic.Uint64 {
	return b.seg.Uint64(b.off + barrierHeader + 8*int(i))
}

// lock takes the barrier's own lock. Its holders hold it only between
// loads and stores; one that died there breaks the barrier.
func (b Barrier) lock() {
	if _, err := b.mu.Lock(time.Time{}, nil); errors.Is(err, mperr.ErrOwnerDied) {
		b.breakLocked(b.gen.Load())
	}
}

func (b Barrier) unlock() { b.mu.Unlock() }

// Wait waits for the other parties, as Mutex.Lock, and returns the
// caller's place in the order of arrival. The last to arrive runs action
// (nil: none) first, and passes the barrier; an action's error breaks the
// barrier and is returned. A deadline or stop that comes first breaks the
// barrier, as in Python.
func (b Barrier) Wait(deadline time.Time, stop *atomic.Bool, action func() error) (int, error) {
	b.lock()
	g := b.gen.Load()
	if g&1 != 0 {
		b.unlock()
		return 0, mperr.ErrBrokenBarrier
	}
	i := b.count.Load()
	if i+1 >= b.parties.Load() {
		if action != nil {
			if err := action(); err != nil {
				b.breakLocked(g)
				b.unlock()
				return int(i), err
			}
		}
		b.outcomes.Or(1 << (g >> 1 % 32))
		b.count.Store(0)
		b.mu.before()
		b.gen.Store(g + 2)
		b.unlock()
		shm.Wake(b.gen, 1<<30)
		return int(i), nil
	}
	b.party(i).Store(shm.Self())
	b.count.Store(i + 1)
	b.unlock()
	check := time.Now().Add(firstCheck)
	for b.gen.Load() == g {
		now := time.Now()
		if !now.Before(check) {
			if b.deadParty(g) {
				b.breakIf(g)
			}
			check = now.Add(checkEvery)
		}
		sleep, ok := until(now, deadline, check, stop)
		if !ok {
			b.breakIf(g)
			break
		}
		shm.Wait(b.gen, g, sleep)
	}
	b.mu.after()
	if b.outcomes.Load()&(1<<(g>>1%32)) == 0 {
		return int(i), mperr.ErrBrokenBarrier
	}
	return int(i), nil
}

// deadParty reports whether a party waiting in generation g has died.
func (b Barrier) deadParty(g uint32) bool {
	b.lock()
	defer b.unlock()
	if b.gen.Load() != g {
		return false
	}
	for i := range b.count.Load() {
		owner := b.party(i).Load()
		if !shm.Alive(int(owner>>32), owner) {
			return true
		}
	}
	return false
}

// breakIf breaks the barrier if generation g still waits.
func (b Barrier) breakIf(g uint32) {
	b.lock()
	if b.gen.Load() == g {
		b.breakLocked(g)
	}
	b.unlock()
}

// breakLocked breaks generation g: its waiters get ErrBrokenBarrier, and
// so does every Wait until Reset.
func (b Barrier) breakLocked(g uint32) {
	if g&1 != 0 {
		return
	}
	b.outcomes.And(^uint32(1 << (g >> 1 % 32)))
	b.count.Store(0)
	b.gen.Store(g | 1)
	shm.Wake(b.gen, 1<<30)
}

// Reset breaks the generation that waits, if any party does, and starts a
// new one.
func (b Barrier) Reset() {
	b.lock()
	g := b.gen.Load()
	if b.count.Load() > 0 {
		b.breakLocked(g)
	}
	b.count.Store(0)
	b.gen.Store(g&^1 + 2)
	b.unlock()
	shm.Wake(b.gen, 1<<30)
}

// Abort breaks the barrier until Reset.
func (b Barrier) Abort() {
	b.lock()
	b.breakLocked(b.gen.Load())
	b.unlock()
}

// Waiting is the number of parties waiting.
func (b Barrier) Waiting() int { return int(b.count.Load()) }

// Broken reports whether the barrier is broken.
func (b Barrier) Broken() bool { return b.gen.Load()&1 != 0 }

// Interrupt wakes every sleeper, as Mutex.Interrupt.
func (b Barrier) Interrupt() { shm.Wake(b.gen, 1<<30) }
