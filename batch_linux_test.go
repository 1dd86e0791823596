//go:build linux

package multiprocessing_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

// Batches: once a lane is full and its readers take items fast, one
// message carries several items, which one reader holds for its next Gets.

func init() {
	mp.Register(forwardUntilNegative)
	mp.Register(getAndReportHeld)
	mp.Register(getUntilHolding)
	mp.Register(putWhileHolding)
	mp.Register(getOneThenTheRest)
}

// forwardUntilNegative gets items from in and puts them into out, until
// one with a negative Seq.
func forwardUntilNegative(in, out *mp.Queue[tagged]) error {
	for {
		v, err := in.Get()
		if err != nil || v.Seq < 0 {
			return err
		}
		if err := out.Put(v); err != nil {
			return err
		}
	}
}

// A consumer SIGKILLed at random loses at most what it held: the batch it
// had taken, whose results it had not yet written. Nothing arrives twice,
// and the queue goes on serving the others.
func TestKilledConsumersLoseAtMostABatchEach(t *testing.T) {
	const producers, consumers, each, kills = 4, 4, 25000, 20
	total := producers * each
	q, err := mp.NewQueue[tagged](0)
	require.NoError(t, err)
	defer q.Close()
	results, err := mp.NewQueue[tagged](0)
	require.NoError(t, err)
	defer results.Close()
	start := func(target any, args ...any) *mp.Process {
		p := mp.NewProcess(target, args...)
		require.NoError(t, p.Start())
		return p
	}
	var prods []*mp.Process
	for i := range producers {
		prods = append(prods, start(produce, q, i, each))
	}
	live := make([]*mp.Process, consumers)
	for i := range live {
		live[i] = start(forwardUntilNegative, q, results)
	}
	seen := make(map[tagged]bool, total)
	twice := 0
	note := func(v tagged) {
		if seen[v] {
			twice++
		}
		seen[v] = true
	}
	rng := rand.New(rand.NewPCG(14, 16))
	for k := range kills {
		for len(seen) < (k+1)*total/(kills+5) {
			v, err := results.GetTimeout(time.Minute)
			require.NoError(t, err, "after %d results", len(seen))
			note(v)
		}
		i := rng.IntN(consumers)
		require.NoError(t, live[i].Kill())
		assert.Error(t, live[i].Join())
		live[i] = start(forwardUntilNegative, q, results)
	}
	for _, p := range prods {
		require.NoError(t, p.Join())
	}
	for range consumers {
		require.NoError(t, q.Put(tagged{Seq: -1}))
	}
	for _, p := range live {
		require.NoError(t, p.JoinTimeout(time.Minute))
	}
	// The consumers have ended: what they put is in results.
	for {
		v, err := results.GetNowait()
		if errors.Is(err, mp.ErrEmpty) {
			break
		}
		require.NoError(t, err)
		note(v)
	}
	lost := total - len(seen)
	t.Logf("%d kills lost %d of %d items (at most %d allowed)", kills, lost, total, kills*mp.QueueMaxBatch)
	assert.Zero(t, twice, "items delivered twice")
	assert.LessOrEqual(t, lost, kills*mp.QueueMaxBatch)
	assert.Zero(t, q.Qsize(), "nothing counted in the lane once it is empty")
}

// getAndReportHeld gets ints until a negative one, spending work on each,
// and puts into report how many it got and the most it held at once.
func getAndReportHeld(q *mp.Queue[int], work time.Duration, report *mp.Queue[[2]int]) error {
	got, most := 0, 0
	for {
		v, err := q.Get()
		if err != nil {
			return err
		}
		if v < 0 {
			return report.Put([2]int{got, most})
		}
		got++
		most = max(most, mp.QueueHeld(q))
		if work > 0 {
			time.Sleep(work) // the task's own time
		}
	}
}

// Readers that take items fast get batches, of at most MaxBatch items;
// readers whose items take them long get one item at a time, so that no
// busy reader holds items while another waits idle.
func TestBatchesGoOnlyToFastReaders(t *testing.T) {
	const consumers = 4
	for _, tc := range []struct {
		name    string
		work    time.Duration
		items   int
		batches bool
	}{
		{"fast", 0, 20000, true},
		{"slow", 2 * time.Millisecond, 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := mp.NewQueue[int](0)
			require.NoError(t, err)
			defer q.Close()
			report, err := mp.NewQueue[[2]int](0)
			require.NoError(t, err)
			defer report.Close()
			// Put before the consumers start, the items fill the lane
			// and wait for room: then they may go in batches.
			for i := range tc.items {
				require.NoError(t, q.Put(i))
			}
			for range consumers {
				require.NoError(t, q.Put(-1))
			}
			var ps []*mp.Process
			for range consumers {
				p := mp.NewProcess(getAndReportHeld, q, tc.work, report)
				require.NoError(t, p.Start())
				ps = append(ps, p)
			}
			sum, most := 0, 0
			var spread []int
			for range consumers {
				r, err := report.GetTimeout(time.Minute)
				require.NoError(t, err)
				sum += r[0]
				most = max(most, r[1])
				spread = append(spread, r[0])
			}
			for _, p := range ps {
				require.NoError(t, p.JoinTimeout(time.Minute))
			}
			t.Logf("items per consumer %v, the most one held %d", spread, most)
			assert.Equal(t, tc.items, sum, "every item got once")
			assert.LessOrEqual(t, most, mp.QueueMaxBatch-1)
			if tc.batches {
				assert.Positive(t, most, "fast readers got batches")
			} else {
				assert.Zero(t, most, "slow readers got one item at a time")
			}
		})
	}
}

// getUntilHolding gets ints until it holds some from a batch, puts into
// report how many it got, and then closes q or just returns, as how says.
func getUntilHolding(q *mp.Queue[int], how string, report *mp.Queue[int]) error {
	got := 0
	for mp.QueueHeld(q) == 0 {
		if _, err := q.Get(); err != nil {
			return err
		}
		got++
	}
	if err := report.Put(got); err != nil {
		return err
	}
	if how == "close" {
		return q.Close()
	}
	return nil
}

// A process that closes the queue, or exits, while it holds items of a
// batch gives them back to the head of the queue: nothing is lost and the
// order holds.
func TestHeldItemsGoBackOnCloseAndExit(t *testing.T) {
	for _, how := range []string{"close", "exit"} {
		t.Run(how, func(t *testing.T) {
			const n = 1000
			q := queueOf(t, n)
			mp.QueueAlwaysBatch(q)
			report, err := mp.NewQueue[int](0)
			require.NoError(t, err)
			defer report.Close()
			p := mp.NewProcess(getUntilHolding, q, how, report)
			require.NoError(t, p.Start())
			require.NoError(t, p.JoinTimeout(time.Minute))
			got, err := report.GetNowait()
			require.NoError(t, err)
			require.Less(t, got, n, "the child held items before it had them all")
			assert.Equal(t, n-got, q.Qsize(), "what it held is counted again")
			for want := got; want < n; want++ {
				v, err := q.GetNowait()
				require.NoError(t, err)
				require.Equal(t, want, v, "the items come back in order")
			}
			_, err = q.GetNowait()
			assert.ErrorIs(t, err, mp.ErrEmpty)
		})
	}
}

// putWhileHolding gets an item, which leaves it holding others, puts how
// many it holds into out, then waits for a word on c.
func putWhileHolding(q, out *mp.Queue[int], c *mp.Connection) error {
	if _, err := q.Get(); err != nil {
		return err
	}
	if err := out.Put(mp.QueueHeld(q)); err != nil {
		return err
	}
	var word string
	return c.Recv(&word)
}

// A Put made while the process holds a batch waits to go with the next
// ones, but not for long: it arrives though the process makes no other
// call on a queue.
func TestPutWhileHoldingArrivesWithoutAnotherCall(t *testing.T) {
	q := queueOf(t, 100)
	mp.QueueAlwaysBatch(q)
	out, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	defer out.Close()
	ours, theirs, err := mp.Pipe(true)
	require.NoError(t, err)
	defer ours.Close()
	p := mp.NewProcess(putWhileHolding, q, out, theirs)
	require.NoError(t, p.Start())
	require.NoError(t, theirs.Close())
	held, err := out.GetTimeout(20 * time.Second)
	require.NoError(t, err, "the Put arrived while the child waits elsewhere")
	assert.Positive(t, held, "the child held a batch when it put")
	require.NoError(t, ours.Send("done"))
	require.NoError(t, p.JoinTimeout(20*time.Second))
}

// getOneThenTheRest gets one int, says so on c, waits for a word back,
// then gets ints until a negative one and puts all it got into out.
func getOneThenTheRest(q *mp.Queue[int], c *mp.Connection, out *mp.Queue[[]int]) error {
	first, err := q.Get()
	if err != nil {
		return err
	}
	if err := c.Send("got one"); err != nil {
		return err
	}
	var word string
	if err := c.Recv(&word); err != nil {
		return err
	}
	got := []int{first}
	for {
		v, err := q.GetTimeout(20 * time.Second)
		if err != nil {
			return err
		}
		if v < 0 {
			return out.Put(got)
		}
		got = append(got, v)
	}
}

// A Get of the queue's maker that takes a batch from the lane puts the
// rest back, in order, for every process: none is left where only the
// maker would get it.
func TestOwnersGetOfABatchLeavesTheRestForOthers(t *testing.T) {
	const n = 500
	q := queueOf(t, n)
	mp.QueueAlwaysBatch(q)
	out, err := mp.NewQueue[[]int](0)
	require.NoError(t, err)
	defer out.Close()
	ours, theirs, err := mp.Pipe(true)
	require.NoError(t, err)
	defer ours.Close()
	p := mp.NewProcess(getOneThenTheRest, q, theirs, out)
	require.NoError(t, p.Start())
	require.NoError(t, theirs.Close())
	var word string
	recvWithin(t, ours, &word)
	mine, err := q.GetNowait()
	require.NoError(t, err)
	require.NoError(t, q.Put(-1))
	require.NoError(t, ours.Send("go on"))
	got, err := out.GetTimeout(time.Minute)
	require.NoError(t, err)
	require.NoError(t, p.JoinTimeout(time.Minute))
	var want []int
	for i := range n {
		if i != mine {
			want = append(want, i)
		}
	}
	assert.Equal(t, want, got, "the child got all but the maker's one, in order")
	assert.Greater(t, mine, 0, "the maker took its item from the lane, after the child's batch")
}
