//go:build !linux

package shm

import (
	"sync/atomic"
	"time"
)

// Wait sleeps while *w holds val, for at most d, looking again every
// millisecond: there is no futex here. (FreeBSD's _umtx_op and macOS's
// os_sync_wait_on_address would do what Linux's futex does.)
func Wait(w *atomic.Uint32, val uint32, d time.Duration) {
	for end := time.Now().Add(d); w.Load() == val && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
}

// Wake does nothing here: waiters look for themselves.
func Wake(*atomic.Uint32, int) {}
