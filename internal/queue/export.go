package queue

// Hooks for the tests of package multiprocessing, which see a queue only
// as an End. Each takes an End that NewOwner made in this process, and
// returns zero for any other End.

// Waiters returns how many calls wait on e: Gets, Puts and Joins.
func Waiters(e End) int {
	c := ownerCore(e)
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.getters) + len(c.putters) + len(c.joiners)
}

// LaneShared reports whether e has handed its lane to another process:
// one of them has begun a Get there.
func LaneShared(e End) bool {
	c := ownerCore(e)
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lane != nil
}

// AlwaysBatch makes e's lane carry batches whenever items wait, however
// slowly its readers take them.
func AlwaysBatch(e End) {
	if c := ownerCore(e); c != nil {
		c.mu.Lock()
		c.alwaysBatch = true
		c.mu.Unlock()
	}
}

func ownerCore(e End) *queueCore {
	if o, ok := e.(*ownerEnd); ok {
		return o.core
	}
	return nil
}
