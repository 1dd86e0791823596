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
