package queue

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
)

// eventParker is a parker on an eventfd, read through Go's poller.
//
// Why not a channel: the item a Get in the process that made a queue waits
// for is most often brought by a broker goroutine that the poller has just
// woken. Readying the Get from there makes the runtime wake a second
// thread to look for work, which on a small machine takes the processor
// from the very child that is to answer next; a Get that waits in the
// poller is picked up by the thread that is already awake.
// BenchmarkQueueResult, a child's answer through a queue, measures it.
type eventParker struct {
	f        *os.File
	deadline bool // a read deadline is set
}

func newParker() parker {
	f, err := ownfd.Eventfd("queue wait", true)
	if err != nil {
		// Out of descriptors, say: wait as elsewhere.
		return newChanParker()
	}
	return &eventParker{f: f}
}

func (p *eventParker) notify() { _, _ = p.f.Write(ownfd.EventfdIncrement) }

func (p *eventParker) wait(timeout time.Duration) bool {
	switch {
	case timeout >= 0:
		_ = p.f.SetReadDeadline(time.Now().Add(timeout))
		p.deadline = true
	case p.deadline:
		_ = p.f.SetReadDeadline(time.Time{})
		p.deadline = false
	}
	var buf [8]byte
	_, err := p.f.Read(buf[:])
	return err == nil
}

func (p *eventParker) drain() {
	var buf [8]byte
	_, _ = unix.Read(ownfd.FD(p.f), buf[:])
}

func (p *eventParker) close() { _ = ownfd.Close(p.f) }
