package queue

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpgo/multiprocessing/internal/mperr"
)

// The core alone, in this process's memory: no broker, no lane, no child.

// patience bounds every wait of these tests for something that must happen.
const patience = 10 * time.Second

// waiters returns how many calls wait on c: Gets, Puts and Joins.
func waiters(c *queueCore) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.getters) + len(c.putters) + len(c.joiners)
}

// waitUntil fails the test unless cond holds within patience.
func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", patience, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// result returns what ch delivers, failing the test after patience.
func result[V any](t *testing.T, ch <-chan V, what string) V {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(patience):
		t.Fatalf("after %v: %s", patience, what)
		panic("unreachable")
	}
}

// inBackground runs f on a goroutine of its own and returns its error.
func inBackground(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return done
}

func item(i int) []byte { return []byte(fmt.Sprint(i)) }

func TestCoreIsFirstInFirstOut(t *testing.T) {
	c := newQueueCore(0)
	defer c.close()
	for i := range 100 {
		require.NoError(t, c.put(item(i), -1, nil))
	}
	assert.Equal(t, 100, c.qsize())
	for i := range 100 {
		got, err := c.get(0)
		require.NoError(t, err)
		require.Equal(t, item(i), got)
	}
	assert.Equal(t, 0, c.qsize())
}

func TestCoreGetNowaitOnEmptyReturnsErrEmpty(t *testing.T) {
	c := newQueueCore(0)
	defer c.close()
	_, err := c.get(0)
	assert.ErrorIs(t, err, mperr.ErrEmpty)
	assert.Equal(t, 0, waiters(c), "a Get that does not wait leaves no waiter")
}

func TestCoreGetTimesOutWithErrEmpty(t *testing.T) {
	c := newQueueCore(0)
	defer c.close()
	start := time.Now()
	_, err := c.get(30 * time.Millisecond)
	assert.ErrorIs(t, err, mperr.ErrEmpty)
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	assert.Equal(t, 0, waiters(c), "the Get that gave up is no longer waiting")
	// The item put afterwards is not lost to the Get that gave up.
	require.NoError(t, c.put(item(1), -1, nil))
	got, err := c.get(0)
	require.NoError(t, err)
	assert.Equal(t, item(1), got)
}

func TestCoreWaitingGetTakesTheNextItem(t *testing.T) {
	c := newQueueCore(0)
	defer c.close()
	got := make(chan []byte, 1)
	go func() {
		v, err := c.get(-1)
		assert.NoError(t, err)
		got <- v
	}()
	waitUntil(t, func() bool { return waiters(c) == 1 }, "the Get never waited")
	require.NoError(t, c.put(item(7), -1, nil))
	assert.Equal(t, item(7), result(t, got, "the waiting Get never got its item"))
	assert.Equal(t, 0, c.qsize(), "the item went to the Get, not into the queue")
}

func TestCoreBoundedPutWaitsForRoom(t *testing.T) {
	c := newQueueCore(2)
	defer c.close()
	require.NoError(t, c.put(item(1), -1, nil))
	require.NoError(t, c.put(item(2), -1, nil))

	assert.ErrorIs(t, c.put(item(3), 0, nil), mperr.ErrFull, "PutNowait on a full queue")
	start := time.Now()
	assert.ErrorIs(t, c.put(item(3), 30*time.Millisecond, nil), mperr.ErrFull)
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	assert.Equal(t, 0, waiters(c), "the Puts that gave up are no longer waiting")
	assert.Equal(t, 2, c.qsize(), "the Puts that gave up added nothing")

	put := inBackground(func() error { return c.put(item(3), -1, nil) })
	waitUntil(t, func() bool { return waiters(c) == 1 }, "the Put never waited")
	got, err := c.get(0)
	require.NoError(t, err)
	assert.Equal(t, item(1), got)
	require.NoError(t, result(t, put, "the Put never got in"))
	for _, want := range []int{2, 3} {
		got, err := c.get(0)
		require.NoError(t, err)
		assert.Equal(t, item(want), got, "the waiting Put's item comes after those before it")
	}
}

func TestCoreCloseEndsEveryWait(t *testing.T) {
	empty := newQueueCore(0)
	full := newQueueCore(1)
	require.NoError(t, full.put(item(1), -1, nil)) // not done, either: Join waits
	get := inBackground(func() error { _, err := empty.get(-1); return err })
	put := inBackground(func() error { return full.put(item(2), -1, nil) })
	join := inBackground(func() error { return full.join(nil) })
	waitUntil(t, func() bool { return waiters(empty) == 1 && waiters(full) == 2 },
		"the Get, the Put and the Join never all waited")

	empty.close()
	full.close()
	assert.ErrorIs(t, result(t, get, "Close did not end the Get"), mperr.ErrQueueClosed)
	assert.ErrorIs(t, result(t, put, "Close did not end the Put"), mperr.ErrQueueClosed)
	assert.ErrorIs(t, result(t, join, "Close did not end the Join"), mperr.ErrQueueClosed)

	assert.ErrorIs(t, full.put(item(3), -1, nil), mperr.ErrQueueClosed, "a Put after Close")
	_, err := empty.get(-1)
	assert.ErrorIs(t, err, mperr.ErrQueueClosed, "a Get after Close, on an empty queue")
	empty.close() // twice: nothing happens
}

func TestCoreTaskDoneAndJoinCountItemsPut(t *testing.T) {
	c := newQueueCore(0)
	defer c.close()
	require.NoError(t, c.join(nil), "Join with nothing put returns at once")
	require.NoError(t, c.put(item(1), -1, nil))
	require.NoError(t, c.put(item(2), -1, nil))
	_, err := c.get(0)
	require.NoError(t, err)

	join := inBackground(func() error { return c.join(nil) })
	waitUntil(t, func() bool { return waiters(c) == 1 }, "Join never waited")
	require.NoError(t, c.taskDone())
	assert.Equal(t, 1, waiters(c), "one item is still not done: Join waits on")
	require.NoError(t, c.taskDone())
	require.NoError(t, result(t, join, "Join did not return once every item was done"))

	assert.ErrorIs(t, c.taskDone(), errTaskDone, "more TaskDones than items put")
	assert.ErrorContains(t, c.taskDone(), "TaskDone called more times")
	join = inBackground(func() error { return c.join(nil) })
	require.NoError(t, result(t, join, "the extra TaskDones moved the count off zero"))
}

func TestCoreJoinEndsWhenItsCallerLeaves(t *testing.T) {
	c := newQueueCore(1)
	defer c.close()
	require.NoError(t, c.put(item(1), -1, nil))
	gone := make(chan struct{})
	join := inBackground(func() error { return c.join(gone) })
	put := inBackground(func() error { return c.put(item(2), -1, gone) })
	waitUntil(t, func() bool { return waiters(c) == 2 }, "the Join and the Put never waited")
	close(gone)
	assert.ErrorIs(t, result(t, join, "gone did not end the Join"), mperr.ErrQueueClosed)
	assert.ErrorIs(t, result(t, put, "gone did not end the Put"), mperr.ErrQueueClosed)
	assert.Equal(t, 1, c.qsize(), "the Put that was given up added nothing")
	c.mu.Lock()
	defer c.mu.Unlock()
	assert.Empty(t, c.putters, "the Put that was given up is no longer waiting")
}

// unget puts an item that could not be delivered back at the head, and
// leaves the count of unfinished items as it was.
func TestCoreUngetPutsTheItemBackFirst(t *testing.T) {
	c := newQueueCore(0)
	defer c.close()
	require.NoError(t, c.put(item(1), -1, nil))
	require.NoError(t, c.put(item(2), -1, nil))
	got, err := c.get(0)
	require.NoError(t, err)
	c.unget(got)
	for _, want := range []int{1, 2} {
		got, err := c.get(0)
		require.NoError(t, err)
		assert.Equal(t, item(want), got)
	}
	require.NoError(t, c.taskDone())
	require.NoError(t, c.taskDone())
	assert.ErrorIs(t, c.taskDone(), errTaskDone, "unget counted the item twice")

	// With a Get waiting, the item goes straight to it.
	require.NoError(t, c.put(item(3), -1, nil))
	got, err = c.get(0)
	require.NoError(t, err)
	got2 := make(chan []byte, 1)
	go func() {
		v, err := c.get(-1)
		assert.NoError(t, err)
		got2 <- v
	}()
	waitUntil(t, func() bool { return waiters(c) == 1 }, "the Get never waited")
	c.unget(got)
	assert.Equal(t, item(3), result(t, got2, "the waiting Get never got the item put back"))
	require.NoError(t, c.taskDone())
	assert.ErrorIs(t, c.taskDone(), errTaskDone)
}

// A Get for another process that cannot take its item (its connection
// failed) gives the item back to the queue, first.
func TestCoreRemoteGetThatFailsGivesTheItemBack(t *testing.T) {
	c := newQueueCore(0)
	defer c.close()
	require.NoError(t, c.put(item(1), -1, nil))
	require.NoError(t, c.put(item(2), -1, nil))
	c.getFor("conn", -1, func([]byte) bool { return false }, func(err error) {
		t.Errorf("expire(%v) for a Get that found an item", err)
	})
	for _, want := range []int{1, 2} {
		got, err := c.get(0)
		require.NoError(t, err)
		assert.Equal(t, item(want), got, "the item that was not delivered is first again")
	}

	// A remote Get that waits on the empty queue, and times out.
	expired := make(chan error, 1)
	c.getFor("conn", 20*time.Millisecond, func([]byte) bool {
		t.Error("an item for a Get that was to time out")
		return true
	}, func(err error) { expired <- err })
	assert.ErrorIs(t, result(t, expired, "the remote Get never expired"), mperr.ErrEmpty)
	assert.Equal(t, 0, waiters(c))
}
