// Package shmsync builds the library's locks, semaphores, events,
// conditions and barriers on words of shared memory (package shm), so that
// any process that maps a segment takes part.
//
// Nothing here waits for a particular process: a lock whose holder died is
// taken over by the next process that wants it (which learns of it through
// ErrOwnerDied), and a process that dies while it waits leaves nothing that
// another must wait for.
package shmsync

import (
	"os"
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/shm"
)

// A Mutex's word is 0 when free, else the holder's pid with waitersBit set
// once some thread may sleep on it. Linux pids fit in 22 bits.
const (
	waitersBit = 1 << 31
	pidMask    = 1<<30 - 1
)

// MutexSize is the room a Mutex takes in a segment: its word, and the
// owner word (shm.Self) of its holder.
const MutexSize = 16

// How long a waiter sleeps before it first asks whether the holder still
// lives, and then between two questions: a dead holder's lock is taken
// over within about a quarter of a second.
const (
	firstCheck = 20 * time.Millisecond
	checkEvery = 200 * time.Millisecond
)

var pid = uint32(os.Getpid())

// A Mutex is a lock held by a process. Any process may unlock it; Lock
// does not nest, so a second Lock of the same process waits as another
// process's would.
type Mutex struct {
	word  *atomic.Uint32
	owner *atomic.Uint64
	happens
}

// NewMutex is the Mutex at offset off of s (a multiple of 8), MutexSize
// bytes.
func NewMutex(s *shm.Segment, off int) Mutex {
	return Mutex{word: s.Uint32(off), owner: s.Uint64(off + 8), happens: newHappens()}
}

// Lock takes the lock, waiting until deadline (zero: for ever; in the
// past: one try) or until stop is set (nil: never). It reports whether it
// took it, and ErrOwnerDied with it when its last holder had died holding
// it.
func (m Mutex) Lock(deadline time.Time, stop *atomic.Bool) (bool, error) {
	if m.word.CompareAndSwap(0, pid) {
		m.owner.Store(shm.Self())
		m.after()
		return true, nil
	}
	ok, err := m.lockSlow(deadline, stop)
	if ok {
		m.after()
	}
	return ok, err
}

func (m Mutex) lockSlow(deadline time.Time, stop *atomic.Bool) (bool, error) {
	want := pid
	now := time.Now()
	check := now // a try asks at once; a waiter after firstCheck
	if deadline.IsZero() || deadline.After(now) {
		check = now.Add(firstCheck)
	}
	// A holder between its CAS and its owner word looks dead for an
	// instant when its pid was some dead holder's: a lock is taken over
	// only when its holder looks dead twice, a millisecond apart, with
	// nothing changed between.
	var suspect struct {
		word  uint32
		owner uint64
	}
	slept, retried := false, false
	for {
		w := m.word.Load()
		if w == 0 {
			if m.word.CompareAndSwap(0, want) {
				m.owner.Store(shm.Self())
				return true, nil
			}
			continue
		}
		now = time.Now()
		if !now.Before(check) {
			owner := m.owner.Load()
			switch {
			case shm.Alive(int(w&pidMask), owner):
				suspect.word = 0
				check = now.Add(checkEvery)
			case suspect.word == w && suspect.owner == owner:
				if m.word.CompareAndSwap(w, pid|w&waitersBit) {
					m.owner.Store(shm.Self())
					return true, mperr.ErrOwnerDied
				}
				continue
			default:
				suspect.word, suspect.owner = w, owner
				check = now.Add(time.Millisecond)
			}
		}
		sleep, ok := until(now, deadline, check, stop)
		if !ok {
			if suspect.word != 0 && !retried && (stop == nil || !stop.Load()) {
				retried = true // a try looks once more at a holder that looked dead
				time.Sleep(check.Sub(now))
				continue
			}
			if slept {
				// The Unlock that woke this waiter may have meant it:
				// pass the wake on.
				shm.Wake(m.word, 1)
			}
			return false, nil
		}
		if w&waitersBit == 0 && !m.word.CompareAndSwap(w, w|waitersBit) {
			continue
		}
		shm.Wait(m.word, w|waitersBit, sleep)
		slept = true
		// Others may sleep too: whoever takes the lock after sleeping
		// keeps the bit, so that its Unlock wakes the next.
		want = pid | waitersBit
	}
}

// stopEvery bounds a sleep that a stop may end: the stop's wake can come
// just before the sleep begins, and is then lost.
const stopEvery = 20 * time.Millisecond

// until is how long to sleep before the next look: up to the deadline and
// the next check; false when the deadline has passed or stop is set.
func until(now, deadline, check time.Time, stop *atomic.Bool) (time.Duration, bool) {
	if stop != nil {
		if stop.Load() {
			return 0, false
		}
		check = minTime(check, now.Add(stopEvery))
	}
	if !deadline.IsZero() {
		if !now.Before(deadline) {
			return 0, false
		}
		check = minTime(check, deadline)
	}
	return max(check.Sub(now), time.Microsecond), true
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Unlock frees the lock, whoever holds it: ErrNotHeld when nobody does.
func (m Mutex) Unlock() error {
	m.before()
	if m.word.CompareAndSwap(pid, 0) {
		return nil
	}
	for {
		w := m.word.Load()
		if w == 0 {
			return mperr.ErrNotHeld
		}
		if m.word.CompareAndSwap(w, 0) {
			if w&waitersBit != 0 {
				shm.Wake(m.word, 1)
			}
			return nil
		}
	}
}

// Mine reports whether this process holds the lock.
func (m Mutex) Mine() bool { return m.word.Load()&pidMask == pid }

// Locked reports whether some process holds the lock.
func (m Mutex) Locked() bool { return m.word.Load() != 0 }

// Interrupt wakes every thread that sleeps on the lock, in every process,
// so that one whose stop was set returns; the others sleep again.
func (m Mutex) Interrupt() { shm.Wake(m.word, 1<<30) }
