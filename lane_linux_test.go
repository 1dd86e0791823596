package multiprocessing_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

// Another process's Gets on an unbounded queue read its items from a lane
// that the owner fills, without asking the owner
// (internal/queue/lane_unix.go). These tests are about what that must not
// change: order, counts, timeouts, closing, and nothing made for a queue
// that only its owner reads.

func init() {
	mp.Register(getInOrder)
	mp.Register(getNowaitThenTimeout)
	mp.Register(getFromGoroutines)
	mp.Register(getOneThenAgain)
	mp.Register(closeWhileGetting)
	mp.Register(makeQueueAndWait)
	mp.Register(drainUntilClosed)
}

// laneItem is item i of a test: its number in the first 8 bytes, and size
// bytes in all; every 100th is larger than a lane message holds, and
// travels in a memory file.
func laneItem(i int) []byte {
	size := 16
	if i%100 == 99 {
		size = 100 << 10
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(i))
	return b
}

// recvWithin receives a message from c into v, failing the test if none
// comes within 20 seconds.
func recvWithin(t *testing.T, c *mp.Connection, v any) {
	t.Helper()
	ready, err := c.Poll(20 * time.Second)
	require.NoError(t, err)
	require.True(t, ready, "no message within 20s")
	require.NoError(t, c.Recv(v))
}

// queueOf makes an unbounded queue that holds 0 to n-1, closed when the
// test ends.
func queueOf(t *testing.T, n int) *mp.Queue[int] {
	t.Helper()
	q, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	for i := range n {
		require.NoError(t, q.Put(i))
	}
	return q
}

// getInOrder gets n items and fails unless they are laneItem(0) to
// laneItem(n-1) in order, and unless the queue counts n-look items once it
// has got look of them, less those this process holds from a batch.
func getInOrder(q *mp.Queue[[]byte], n, look int) error {
	for i := range n {
		b, err := q.Get()
		if err != nil {
			return fmt.Errorf("Get %d: %w", i, err)
		}
		if want := laneItem(i); len(b) != len(want) || binary.BigEndian.Uint64(b) != uint64(i) {
			return fmt.Errorf("Get %d: item %d of %d bytes, want %d of %d", i, binary.BigEndian.Uint64(b), len(b), i, len(want))
		}
		if i+1 == look {
			if size := q.Qsize(); size > n-look || size < n-look-(mp.QueueMaxBatch-1) {
				return fmt.Errorf("Qsize after %d Gets: %d, want %d less at most %d held", look, size, n-look, mp.QueueMaxBatch-1)
			}
		}
	}
	return nil
}

// Items put before any other process got from the queue, more than the lane
// holds, small and large mixed, arrive in order; Qsize counts what is in
// the lane, from the child and from the owner.
func TestLaneKeepsOrderThroughOverflowAndMemoryFiles(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			// The method's descriptors of its own (/dev/null, a
			// forkserver's tickets) are there once it has started one.
			_, err := run(t, method, noop)
			require.NoError(t, err)
			settle(t, method)
			before := openFDs(t)
			q, err := mp.NewQueue[[]byte](0)
			require.NoError(t, err)
			const n = 2000
			for i := range n {
				require.NoError(t, q.Put(laneItem(i)))
			}
			p, err := run(t, method, getInOrder, q, n, 10)
			require.NoError(t, err)
			assert.True(t, mp.QueueLaneShared(q), "the child read through a lane")
			assert.Equal(t, 0, q.Qsize(), "the items the child took are counted")
			// The owner's own Gets read the lane too, once it has one.
			require.NoError(t, q.Put(laneItem(99)))
			b, err := q.GetTimeout(10 * time.Second)
			require.NoError(t, err)
			assert.Equal(t, laneItem(99), b)
			// Closing it releases the lane, the feeder's descriptor and
			// the memory files.
			require.NoError(t, q.Close())
			require.NoError(t, p.Close())
			settle(t, method)
			// (Counted: a forkserver's tickets are new sockets after a
			// start, at the old numbers.)
			deadline := time.Now().Add(5 * time.Second)
			for len(openFDs(t)) > len(before) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			assert.LessOrEqual(t, len(openFDs(t)), len(before), "descriptors left; new since: %v", newFDs(t, before))
		})
	}
}

// getNowaitThenTimeout takes what GetNowait gives until ErrEmpty, expects
// want of them, then a GetTimeout that gives up after wait.
func getNowaitThenTimeout(q *mp.Queue[int], want int, wait time.Duration) error {
	var got []int
	for {
		v, err := q.GetNowait()
		if errors.Is(err, mp.ErrEmpty) {
			break
		}
		if err != nil {
			return err
		}
		got = append(got, v)
	}
	if len(got) != want {
		return fmt.Errorf("GetNowait gave %v, want %d items", got, want)
	}
	start := time.Now()
	if _, err := q.GetTimeout(wait); !errors.Is(err, mp.ErrEmpty) {
		return fmt.Errorf("GetTimeout on an empty queue: %v", err)
	}
	if waited := time.Since(start); waited < wait {
		return fmt.Errorf("GetTimeout gave up after %v, before %v", waited, wait)
	}
	return nil
}

// GetNowait in a child sees at once what was put before its first Get, and
// GetTimeout waits as long as it is told.
func TestLaneGetNowaitAndGetTimeoutInAChild(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			_, err := run(t, method, getNowaitThenTimeout, queueOf(t, 5), 5, 50*time.Millisecond)
			require.NoError(t, err)
		})
	}
	t.Run("shared lane", func(t *testing.T) {
		q := queueOf(t, 0)
		shareLane(t, q)
		for i := range 5 {
			require.NoError(t, q.Put(i))
		}
		_, err := run(t, mp.Spawn, getNowaitThenTimeout, q, 5, 50*time.Millisecond)
		require.NoError(t, err)
	})
}

// getNothing asks for q's lane with a GetNowait that must find q empty.
func getNothing(q *mp.Queue[int]) error {
	if _, err := q.GetNowait(); !errors.Is(err, mp.ErrEmpty) {
		return fmt.Errorf("GetNowait on an empty queue: %v", err)
	}
	return nil
}

// shareLane gives the lane of q, empty, to a child that takes nothing, so
// that the next process to get from q reads a lane that another process
// has too, and waits on it out of its poller.
func shareLane(t *testing.T, q *mp.Queue[int]) {
	t.Helper()
	_, err := run(t, mp.Spawn, getNothing, q)
	require.NoError(t, err)
	require.Equal(t, 1, mp.QueueLaneReaders(q))
}

// getFromGoroutines gets from q on four goroutines at once, two with Get
// and two with GetTimeout, each until it gets a negative number, and fails
// unless they got 0 to n-1 between them, each once.
func getFromGoroutines(q *mp.Queue[int], n int) error {
	var mu sync.Mutex
	var got []int
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for {
				var v int
				var err error
				if g%2 == 0 {
					v, err = q.Get()
				} else if v, err = q.GetTimeout(5 * time.Millisecond); errors.Is(err, mp.ErrEmpty) {
					continue
				}
				if err != nil || v < 0 {
					errs <- err
					return
				}
				mu.Lock()
				got = append(got, v)
				mu.Unlock()
			}
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			return err
		}
	}
	slices.Sort(got)
	for i, v := range got {
		if v != i {
			return fmt.Errorf("got %d items; number %d is %d", len(got), i, v)
		}
	}
	if len(got) != n {
		return fmt.Errorf("got %d items, want %d", len(got), n)
	}
	return nil
}

// Goroutines of one child share its lane: every item reaches one of them,
// and timed Gets that give up take nothing with them.
func TestLaneSharedByGoroutinesOfAChild(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprint("shared lane=", shared), func(t *testing.T) {
			q := queueOf(t, 0)
			if shared {
				shareLane(t, q)
			}
			const n = 2000
			p := mp.NewProcess(getFromGoroutines, q, n)
			require.NoError(t, p.Start())
			for i := range n {
				require.NoError(t, q.Put(i))
			}
			for range 4 {
				require.NoError(t, q.Put(-1))
			}
			require.NoError(t, p.JoinTimeout(60*time.Second))
		})
	}
}

// getOneThenAgain gets an item, says so on ctl, waits for a word back and
// returns what a second Get gives.
func getOneThenAgain(q *mp.Queue[int], ctl *mp.Connection) error {
	if _, err := q.Get(); err != nil {
		return err
	}
	if err := ctl.Send("got one"); err != nil {
		return err
	}
	var word string
	if err := ctl.Recv(&word); err != nil {
		return err
	}
	v, err := q.Get()
	if err != nil {
		return err
	}
	return fmt.Errorf("got %d from a queue its owner closed", v)
}

// Close in the owner takes back what its lane held: a child's next Get
// returns ErrQueueClosed, not an item. More items than the lane holds
// wait in the owner, so Close also ends the feeder that waits for room.
func TestOwnersCloseEmptiesTheLane(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	q := queueOf(t, 5000)
	ours, theirs, err := mp.Pipe(true)
	require.NoError(t, err)
	defer ours.Close()
	p := mp.NewProcess(getOneThenAgain, q, theirs)
	require.NoError(t, p.Start())
	require.NoError(t, theirs.Close())
	var word string
	recvWithin(t, ours, &word)
	require.NoError(t, q.Close())
	require.NoError(t, ours.Send("go on"))
	var exit *mp.ExitError
	require.ErrorAs(t, p.JoinTimeout(20*time.Second), &exit)
	assert.Contains(t, exit.Message, "queue is closed")
	require.NoError(t, ours.Close())
	eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines }, "the feeder and the broker's goroutines ended")
}

// A queue that other processes only put into has no lane: its items stay
// in the owner's memory, as before lanes.
func TestQueueOnlyItsOwnerReadsHasNoLane(t *testing.T) {
	q := queueOf(t, 0)
	p := mp.NewProcess(putAndReturn, q, 100)
	require.NoError(t, p.Start())
	require.NoError(t, p.JoinTimeout(20*time.Second))
	for i := range 100 {
		v, err := q.GetNowait()
		require.NoError(t, err)
		require.Equal(t, i, v)
	}
	assert.False(t, mp.QueueLaneShared(q))
}

// closeWhileGetting gets one item, so that it has the lane, then closes q
// while another goroutine waits in a Get on it, and fails unless that Get
// returns ErrQueueClosed.
func closeWhileGetting(q *mp.Queue[int]) error {
	if _, err := q.Get(); err != nil {
		return err
	}
	got := make(chan error, 1)
	go func() { _, err := q.Get(); got <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for !waitsInLane() {
		if time.Now().After(deadline) {
			return errors.New("the second Get never waited in the lane")
		}
		time.Sleep(time.Millisecond)
	}
	if err := q.Close(); err != nil {
		return err
	}
	if err := <-got; !errors.Is(err, mp.ErrQueueClosed) {
		return fmt.Errorf("the waiting Get returned %v, not ErrQueueClosed", err)
	}
	return nil
}

// waitsInLane reports whether a goroutine of this process waits for a
// lane's next item.
func waitsInLane() bool {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		// (In Go's poller, or, once other processes read the lane too, in a
		// system call of its own.)
		if strings.Contains(g, "[IO wait") && strings.Contains(g, "laneReader).get") || strings.Contains(g, "laneWaiter).wait") {
			return true
		}
	}
	return false
}

// Close in a process that gets from a queue ends its own waiting Get with
// ErrQueueClosed.
func TestCloseInAChildEndsItsWaitingGet(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			_, err := run(t, method, closeWhileGetting, queueOf(t, 1))
			require.NoError(t, err)
		})
	}
	t.Run("shared lane", func(t *testing.T) {
		q := queueOf(t, 0)
		shareLane(t, q)
		require.NoError(t, q.Put(0))
		_, err := run(t, mp.Spawn, closeWhileGetting, q)
		require.NoError(t, err)
	})
}

// makeQueueAndWait makes a queue, puts 0 to 2 into it and starts a child
// that gets from it and reports over report, then waits to be killed.
func makeQueueAndWait(report *mp.Connection) error {
	q, err := mp.NewQueue[int](0)
	if err != nil {
		return err
	}
	for i := range 3 {
		if err := q.Put(i); err != nil {
			return err
		}
	}
	if err := mp.NewProcess(drainUntilClosed, q, report).Start(); err != nil {
		return err
	}
	select {}
}

// drainUntilClosed says on report that it got its first item, then gets
// until an error, and sends what it got and the error's text.
func drainUntilClosed(q *mp.Queue[int], report *mp.Connection) error {
	first, err := q.Get()
	if err != nil {
		return err
	}
	if err := report.Send(first); err != nil {
		return err
	}
	var got []int
	for {
		v, err := q.Get()
		if err != nil {
			return report.Send(fmt.Sprint(got, " ", err))
		}
		got = append(got, v)
	}
}

// A queue's maker that dies without closing it (SIGKILL) leaves what it
// had handed out to its lane: another process gets those items, then
// ErrQueueClosed, and does not hang.
func TestLaneOutlivesItsKilledMaker(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			maker, ours := startWithPipe(t, method, makeQueueAndWait)
			var first int
			recvWithin(t, ours, &first)
			assert.Equal(t, 0, first)
			require.NoError(t, maker.Kill())
			var rest string
			recvWithin(t, ours, &rest)
			assert.Equal(t, "[1 2] "+mp.ErrQueueClosed.Error(), rest)
			_ = maker.JoinTimeout(20 * time.Second)
		})
	}
}

func init() {
	mp.Register(getNothing)
}

// workersOn starts n children running echoUntilNegative on in and out,
// and waits until each has the lane of in. The children end with the
// test.
func workersOn(t *testing.T, n int, in, out *mp.Queue[int]) []*mp.Process {
	t.Helper()
	var ps []*mp.Process
	for range n {
		p := mp.NewProcess(echoUntilNegative, in, out)
		require.NoError(t, p.Start())
		t.Cleanup(func() { _ = p.Kill(); _ = p.Join() })
		ps = append(ps, p)
	}
	eventually(t, 20*time.Second, func() bool { return mp.QueueLaneReaders(in) == n }, "the workers did not all ask for the lane")
	return ps
}

// sleeps returns how many times the threads of the processes ps have gone
// to sleep (voluntary context switches).
func sleeps(t *testing.T, ps []*mp.Process) int {
	t.Helper()
	total := 0
	for _, p := range ps {
		tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(p.Pid()), "task", "*", "status"))
		require.NoError(t, err)
		for _, task := range tasks {
			status, err := os.ReadFile(task)
			if err != nil {
				continue // a thread that has just ended
			}
			for _, line := range strings.Split(string(status), "\n") {
				if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
					n, err := strconv.Atoi(strings.TrimSpace(v))
					require.NoError(t, err)
					total += n
				}
			}
		}
	}
	return total
}

// Workers waiting on one queue wake one per item, not all of them for
// every item, as in Python, where they wait behind a lock.
func TestLaneWakesOneWaitingWorkerPerItem(t *testing.T) {
	const workers, trips = 8, 300
	in, out := queueOf(t, 0), queueOf(t, 0)
	ps := workersOn(t, workers, in, out)
	roundTrip := func(i int) {
		require.NoError(t, in.Put(i))
		v, err := out.GetTimeout(20 * time.Second)
		require.NoError(t, err)
		require.Equal(t, 2*i, v)
	}
	for i := range 2 * workers {
		roundTrip(i) // every worker is in its Get, out of the poller
	}
	before := sleeps(t, ps)
	for i := range trips {
		roundTrip(i)
	}
	perTrip := float64(sleeps(t, ps)-before) / trips
	t.Logf("the workers slept %.1f times per round trip", perTrip)
	// One worker handles each item, and sleeps a few times on its way;
	// each of the others would sleep at least once more.
	assert.Less(t, perTrip, float64(workers)/2+1, "the workers wake for items that others take")
	for range workers {
		require.NoError(t, in.Put(-1))
	}
	for _, p := range ps {
		require.NoError(t, p.JoinTimeout(20*time.Second))
	}
}

// The owner's Close ends the Gets that wait on a lane in every process
// that shares it.
func TestOwnersCloseEndsEveryWaitingWorker(t *testing.T) {
	const workers = 4
	in, out := queueOf(t, 0), queueOf(t, 0)
	ps := workersOn(t, workers, in, out)
	for i := range 2 * workers {
		require.NoError(t, in.Put(i))
		_, err := out.GetTimeout(20 * time.Second)
		require.NoError(t, err)
	}
	require.NoError(t, in.Close())
	for _, p := range ps {
		var exit *mp.ExitError
		require.ErrorAs(t, p.JoinTimeout(20*time.Second), &exit)
		assert.Contains(t, exit.Message, "queue is closed")
	}
}
