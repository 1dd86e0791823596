//go:build unix

package queue

import "sync/atomic"

// LaneReaders returns how many times e has handed its lane to another
// process.
func LaneReaders(e End) int {
	c := ownerCore(e)
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.lane.(*ownerLane)
	if !ok {
		return 0
	}
	return int(atomic.LoadUint64(readersWord(l.mem)))
}

// Held returns how many items this process's Gets hold from a batch of
// e's lane, e a queue made elsewhere; 0 while a Get is under way.
func Held(e End) int {
	r, ok := e.(*remoteEnd)
	if !ok {
		return 0
	}
	l := r.currentLane()
	if l == nil {
		return 0
	}
	select {
	case <-l.turn:
		defer func() { l.turn <- struct{}{} }()
		return len(l.held)
	default:
		return 0
	}
}
