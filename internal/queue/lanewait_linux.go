package queue

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/conn"
	"github.com/mpgo/multiprocessing/internal/ownfd"
)

// laneWaiter is how a process waits for its next item in a lane that
// others read too: one thread, in epoll_wait, on an epoll of its own that
// watches the lane with EPOLLEXCLUSIVE, so that each item wakes one of the
// processes that wait, not all of them. Only a process in epoll_wait
// counts as woken: the kernel passes an item by a process that is not
// waiting, and a process that comes to wait while an item is in the lane
// returns at once (the epoll is level triggered). The end of the lane
// wakes them all.
type laneWaiter struct {
	ep, cancel *os.File // the epoll, and an eventfd it watches too
	epfd       int
}

func newLaneWaiter(lane int) (*laneWaiter, error) {
	ep, err := ownfd.Epoll("queue lane wait")
	if err != nil {
		return nil, err
	}
	w := &laneWaiter{ep: ep, epfd: ownfd.FD(ep)}
	if w.cancel, err = ownfd.Eventfd("queue lane cancel", false); err != nil {
		w.close()
		return nil, err
	}
	for _, watch := range []struct {
		fd     int
		events uint32
	}{{lane, unix.EPOLLIN | unix.EPOLLEXCLUSIVE}, {ownfd.FD(w.cancel), unix.EPOLLIN}} {
		ev := unix.EpollEvent{Events: watch.events, Fd: int32(watch.fd)}
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, watch.fd, &ev); err != nil {
			w.close()
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
	}
	return w, nil
}

// wait returns when the lane may have a message or has ended, when stop
// was called, or at deadline (never, if zero), and reports whether it
// returned before the deadline. The caller tries a read after each
// return: the item it was woken for is its to take.
func (w *laneWaiter) wait(deadline time.Time) (bool, error) {
	var events [2]unix.EpollEvent
	for {
		ms := -1
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return false, nil
			}
			ms = conn.PollMillis(left)
		}
		n, err := unix.EpollWait(w.epfd, events[:], ms)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return false, os.NewSyscallError("epoll_wait", err)
		case n > 0:
			return true, nil
		}
	}
}

// stop ends a wait in progress, and every later one, at once.
func (w *laneWaiter) stop() { _, _ = w.cancel.Write(ownfd.EventfdIncrement) }

func (w *laneWaiter) close() {
	for _, f := range []*os.File{w.ep, w.cancel} {
		if f != nil {
			_ = ownfd.Close(f)
		}
	}
}

// socketHolds reports whether the lane socket fd holds a message: SIOCINQ
// on a sequenced-packet socket counts the bytes of every message queued.
func socketHolds(fd int) bool {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	return err != nil || n > 0
}
