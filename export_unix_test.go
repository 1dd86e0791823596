//go:build unix

package multiprocessing

import (
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/bulk"
	"github.com/mpgo/multiprocessing/internal/forkserver"
)

// DirectCopies is how many large Pipe messages this process has copied
// straight from their senders' memory.
func DirectCopies() int64 { return bulk.DirectCopies.Load() }

// StallDirectCopies makes this process, once it has claimed a large Pipe
// message to copy from its sender's memory, wait for d first, and set
// claimed.
func StallDirectCopies(d time.Duration, claimed *atomic.Bool) {
	bulk.AfterClaim = func() {
		claimed.Store(true)
		time.Sleep(d)
	}
}

// StallLargeSends makes this process's large Pipe messages go through
// their memory file, never copied straight from its memory, and stop after
// their first piece is in, for an hour: a sender to kill in the middle of
// one.
func StallLargeSends() {
	bulk.FillOnly = true
	bulk.AfterPiece = func() { time.Sleep(time.Hour) }
}

// Hooks into the forkserver for the tests of package multiprocessing_test.

func currentForkserver() *forkserver.Client {
	theForkserver.mu.Lock()
	defer theForkserver.mu.Unlock()
	return theForkserver.c
}

// ForkserverPid returns the pid of the forkserver last started, 0 if none.
func ForkserverPid() int {
	if c := currentForkserver(); c != nil {
		return c.Pid()
	}
	return 0
}

// ForkserverDir returns the directory of the forkserver last started.
func ForkserverDir() string {
	if c := currentForkserver(); c != nil {
		return c.Dir()
	}
	return ""
}

// ForkserverRunning reports whether this process has a forkserver that
// has not ended.
func ForkserverRunning() bool {
	c := currentForkserver()
	return c != nil && !c.Ended()
}

// ForkserverWarm returns how many warm children the running forkserver
// has ready for this process.
func ForkserverWarm() (int, error) {
	c, err := theForkserver.client()
	if err != nil {
		return 0, err
	}
	return c.Warm(), nil
}

// SetForkserverWrongKey makes the next forkserver's client prove a wrong
// authkey.
func SetForkserverWrongKey(wrong bool) {
	theForkserver.mu.Lock()
	theForkserver.opts.WrongKey = wrong
	theForkserver.mu.Unlock()
}

// ForkserverTicketFDs returns the descriptors of the tickets this process
// holds: each warm child's control socket, bootstrap socket and pidfd.
func ForkserverTicketFDs() []int {
	c := currentForkserver()
	if c == nil {
		return nil
	}
	return c.TicketFDs()
}

// ForkserverPool is how many warm children a process keeps tickets for.
const ForkserverPool = forkserver.WarmChildren
