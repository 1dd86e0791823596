package shmsync

import (
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/shm"
)

// SemSize is the room a Sem takes: its value, the count of threads that
// may sleep on it, and its bound plus one.
const SemSize = 16

// A Sem is a counting semaphore. It has no owner: a process that dies
// holding units does not give them back, as in Python.
type Sem struct {
	value, sleepers, bound *atomic.Uint32
	happens
}

// NewSem is the Sem at offset off of s.
func NewSem(s *shm.Segment, off int) Sem {
	return Sem{value: s.Uint32(off), sleepers: s.Uint32(off + 4), bound: s.Uint32(off + 8), happens: newHappens()}
}

// Init sets a new Sem's value; bounded, it refuses to go above it.
func (s Sem) Init(value uint32, bounded bool) {
	s.value.Store(value)
	if bounded {
		s.bound.Store(value + 1) // 0: no bound
	}
}

// Acquire takes a unit, waiting as Mutex.Lock does; it reports whether it
// took one.
func (s Sem) Acquire(deadline time.Time, stop *atomic.Bool) bool {
	for {
		if v := s.value.Load(); v > 0 {
			if s.value.CompareAndSwap(v, v-1) {
				s.after()
				return true
			}
			continue
		}
		sleep, ok := until(time.Now(), deadline, time.Now().Add(time.Hour), stop)
		if !ok {
			return false
		}
		// Counted before the kernel compares the value: a Release that
		// comes between sees the sleeper, or the sleeper sees its unit.
		s.sleepers.Add(1)
		shm.Wait(s.value, 0, sleep)
		s.sleepers.Add(^uint32(0))
	}
}

// Release gives a unit back: ErrTooManyReleases past a bound.
func (s Sem) Release() error {
	s.before()
	for {
		v := s.value.Load()
		if b := s.bound.Load(); b != 0 && v >= b-1 {
			return mperr.ErrTooManyReleases
		}
		if s.value.CompareAndSwap(v, v+1) {
			break
		}
	}
	if s.sleepers.Load() > 0 {
		shm.Wake(s.value, 1)
	}
	return nil
}

// Value is the number of units free.
func (s Sem) Value() int { return int(s.value.Load()) }

// Interrupt wakes every sleeper, as Mutex.Interrupt.
func (s Sem) Interrupt() { shm.Wake(s.value, 1<<30) }
