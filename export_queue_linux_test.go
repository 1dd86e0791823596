package multiprocessing

import "github.com/mpgo/multiprocessing/internal/queue"

// Hooks into the queues for the tests of package multiprocessing_test.

// QueueWaiters returns how many calls wait on q in this process, the one
// that made it: Gets, Puts and Joins.
func QueueWaiters[T any](q *Queue[T]) int {
	end, err := q.current()
	if err != nil {
		return 0
	}
	return queue.Waiters(end)
}

// QueueLaneShared reports whether q, made by this process, has handed its
// lane to another process: one of them has begun a Get there.
func QueueLaneShared[T any](q *Queue[T]) bool {
	end, err := q.current()
	if err != nil {
		return false
	}
	return queue.LaneShared(end)
}

// QueueLaneReaders returns how many times q, made by this process, has
// handed its lane to another process.
func QueueLaneReaders[T any](q *Queue[T]) int {
	end, err := q.current()
	if err != nil {
		return 0
	}
	return queue.LaneReaders(end)
}
