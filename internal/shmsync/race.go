package shmsync

import (
	"sync/atomic"

	"github.com/mpgo/multiprocessing/internal/proc"
)

// happens carries the happens-before edges of one object between the
// goroutines of this process to the race detector, which sees atomics on
// Go's own memory only, not on a shared mapping: what a goroutine wrote
// before it unlocked is then not reported as racing with what the next
// holder reads. It costs nothing without -race.
type happens struct{ clock *atomic.Uint32 }

func newHappens() happens {
	if proc.RaceEnabled {
		return happens{new(atomic.Uint32)}
	}
	return happens{}
}

// before marks what the caller did so far as seen by the next after.
func (h happens) before() {
	if proc.RaceEnabled {
		h.clock.Add(1)
	}
}

// after is the other end of before.
func (h happens) after() {
	if proc.RaceEnabled {
		h.clock.Load()
	}
}
