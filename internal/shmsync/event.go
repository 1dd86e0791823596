package shmsync

import (
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/shm"
)

// EventSize is the room an Event takes: its word (the number of Sets
// that found it clear, times two, plus one while it is set), and the count
// of threads that may sleep on it.
const EventSize = 8

// An Event is a flag that processes wait to see set.
type Event struct {
	word, sleepers *atomic.Uint32
	happens
}

// NewEvent is the Event at offset off of s.
func NewEvent(s *shm.Segment, off int) Event {
	return Event{word: s.Uint32(off), sleepers: s.Uint32(off + 4), happens: newHappens()}
}

// Set sets the flag and wakes every waiter. A waiter that died counts
// among the sleepers for ever: it costs a wake, and blocks nothing.
func (e Event) Set() {
	e.before()
	for {
		w := e.word.Load()
		if w&1 != 0 {
			return
		}
		if e.word.CompareAndSwap(w, w+3) {
			break
		}
	}
	if e.sleepers.Load() > 0 {
		shm.Wake(e.word, 1<<30)
	}
}

// Clear clears the flag.
func (e Event) Clear() { e.word.And(^uint32(1)) }

// IsSet reports the flag.
func (e Event) IsSet() bool { return e.word.Load()&1 != 0 }

// Wait waits, as Mutex.Lock does, until the flag is set or has been set
// since Wait began (a Set then a Clear wake a waiter too), and reports
// whether it was.
func (e Event) Wait(deadline time.Time, stop *atomic.Bool) bool {
	w := e.word.Load()
	for w&1 == 0 {
		sleep, ok := until(time.Now(), deadline, time.Now().Add(time.Hour), stop)
		if !ok {
			return false
		}
		e.sleepers.Add(1)
		shm.Wait(e.word, w, sleep)
		e.sleepers.Add(^uint32(0))
		if now := e.word.Load(); now != w {
			break // set, or set and cleared since
		}
	}
	e.after()
	return true
}

// Interrupt wakes every sleeper, as Mutex.Interrupt.
func (e Event) Interrupt() { shm.Wake(e.word, 1<<30) }
