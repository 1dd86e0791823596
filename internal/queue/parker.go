package queue

import "time"

// A parker is where a Get in the process that made a queue waits for its
// item. notify ends a wait (or the next one), wait reports whether it was
// notified before timeout (below zero: no limit), and drain forgets a
// notification that was not waited for.
type parker interface {
	notify()
	wait(timeout time.Duration) bool
	drain()
	close()
}

// chanParker is a parker on a channel.
type chanParker chan struct{}

func newChanParker() parker { return make(chanParker, 1) }

func (p chanParker) notify() {
	select {
	case p <- struct{}{}:
	default:
	}
}

func (p chanParker) wait(timeout time.Duration) bool {
	expired, stop := expiry(timeout)
	defer stop()
	select {
	case <-p:
		return true
	case <-expired:
		return false
	}
}

func (p chanParker) drain() {
	select {
	case <-p:
	default:
	}
}

func (p chanParker) close() {}
