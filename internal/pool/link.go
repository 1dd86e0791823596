package pool

import (
	"os"
	"sync/atomic"
	"unsafe"
)

// A Link is the pool's end of one worker: its socket and, where this
// system has memory files, a page the two share, whose first word is the
// number of the task the worker runs, stored just before the worker starts
// it. So when the worker dies, the pool knows whether the first task it
// had not answered was running, without a frame for each start: one write
// a task fewer, for a worker that would otherwise wait for each task and
// say so. Where there is no page, a worker says when it starts a task
// after a wait (wire.TasksStarted).
type Link struct {
	sock *os.File
	page []byte // nil without a page
}

// started is the number of the task the worker last started, by its
// page; 0 without one.
func (l *Link) started() uint64 {
	if l.page == nil {
		return 0
	}
	return atomic.LoadUint64(startedWord(l.page))
}

// startedWord is the word of the page: the mapping is page aligned, so
// the word is aligned as atomics need.
func startedWord(page []byte) *uint64 { return (*uint64)(unsafe.Pointer(&page[0])) }

// pages is whether links get a page where they can; the tests turn it off
// to run the frames that stand in for it elsewhere.
var pages atomic.Bool

func init() { pages.Store(true) }

// UsePages turns pages on or off for the links made after it, and
// returns the setting it replaces. (For the tests of the frames that
// stand in for them.)
func UsePages(on bool) bool { return pages.Swap(on) }
