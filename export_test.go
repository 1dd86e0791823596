package multiprocessing

import (
	"math"
	"os"
	"time"

	"github.com/mpgo/multiprocessing/internal/bootstrap"
	"github.com/mpgo/multiprocessing/internal/conn"
	"github.com/mpgo/multiprocessing/internal/pool"
	"github.com/mpgo/multiprocessing/internal/proc"
	"github.com/mpgo/multiprocessing/internal/queue"
)

// Hooks for the tests of package multiprocessing_test.

// A test binary started with MPGO_TEST_BOOTSTRAP_TIMEOUT waits that long for
// bootstrap messages (set before the package's init reads one).
var _ = func() bool {
	if d, err := time.ParseDuration(os.Getenv("MPGO_TEST_BOOTSTRAP_TIMEOUT")); err == nil {
		bootstrap.Timeout = d
	}
	return true
}()

// PoolStartFrames makes the pools started after it give their workers no
// page: they say which task they start in frames, as they do where there
// are no memory files. It returns what undoes it.
func PoolStartFrames() (restore func()) {
	old := pool.UsePages(false)
	return func() { pool.UsePages(old) }
}

// SendPipesInChunks makes this process's pipes send every message in
// chunks, none in a memory file.
func SendPipesInChunks() { conn.FileMin = math.MaxInt }

// RaceEnabled says whether the test binary was built with -race, where a
// child's start costs three times as much.
const RaceEnabled = proc.RaceEnabled

// PoolMaxWindow is the most tasks a pool's worker holds at once.
const PoolMaxWindow = pool.MaxWindow

// QueueMaxBatch is the most items one message of a queue's lane carries.
const QueueMaxBatch = queue.MaxBatch

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

// QueueHeld returns how many items this process's Gets hold from a batch
// of q's lane, q a queue made by another process.
func QueueHeld[T any](q *Queue[T]) int {
	end, err := q.current()
	if err != nil {
		return 0
	}
	return queue.Held(end)
}

// QueueAlwaysBatch makes q, made by this process, put items into its lane
// in batches whenever they wait, however slowly its readers take them.
func QueueAlwaysBatch[T any](q *Queue[T]) {
	if end, err := q.current(); err == nil {
		queue.AlwaysBatch(end)
	}
}

// ConditionWaiting is the number of c's waiters not yet notified.
func ConditionWaiting(c *Condition) int { return c.cond.Waiting() }
