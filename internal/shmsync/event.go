package shmsync

import (
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/shm"
)

// EventSize is the room an Event takes: its flag, and the count of threads
// that may sleep on it.
const EventSize = 8

// An Event is a flag that processes wait to see set.
type Event struct {
	flag, sleepers *atomic.Uint32
	happens
}

// NewEvent is the Event at offset off of s.
func NewEvent(s *shm.Segment, off int) Event {
	return Event{flag: s.Uint32(off), sleepers: s.Uint32(off + 4), happens: newHappens()}
}

// Set sets the flag and wakes every waiter. A waiter that died counts
// among the sleepers for ever: it costs a wake, and blocks nothing.
func (e Event) Set() {
	e.before()
	e.flag.Store(1)
	if e.sleepers.Load() > 0 {
		shm.Wake(e.flag, 1<<30)
	}
}

// Clear clears the flag.
func (e Event) Clear() { e.flag.Store(0) }

// IsSet reports the flag.
func (e Event) IsSet() bool { return e.flag.Load() == 1 }

// Wait waits for the flag, as Mutex.Lock does, and reports it.
func (e Event) Wait(deadline time.Time, stop *atomic.Bool) bool {
	for e.flag.Load() == 0 {
		sleep, ok := until(time.Now(), deadline, time.Now().Add(time.Hour), stop)
		if !ok {
			return false
		}
		e.sleepers.Add(1)
		shm.Wait(e.flag, 0, sleep)
		e.sleepers.Add(^uint32(0))
	}
	e.after()
	return true
}

// Interrupt wakes every sleeper, as Mutex.Interrupt.
func (e Event) Interrupt() { shm.Wake(e.flag, 1<<30) }
