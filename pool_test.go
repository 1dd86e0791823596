package multiprocessing_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

// Pool targets.

func sq(x int) int { return x * x }

func failOn(x int) (int, error) {
	if x%10 == 3 {
		return 0, fmt.Errorf("no %d", x)
	}
	return x, nil
}

func panicOn(x int) int {
	if x == 5 {
		panic("five")
	}
	return x
}

func add(a, b int) int { return a + b }

func whoAmI() string { return mp.CurrentProcess().Name }

func workerPid() int { return os.Getpid() }

func init() {
	mp.Register(sq)
	mp.Register(failOn)
	mp.Register(panicOn)
	mp.Register(add)
	mp.Register(whoAmI)
	mp.Register(workerPid)
}

// newPool starts a pool that the test closes and joins, with a deadline.
func newPool(t *testing.T, method mp.StartMethod, opts mp.PoolOptions) *mp.Pool {
	t.Helper()
	ctx, err := mp.GetContext(method)
	require.NoError(t, err)
	p, err := ctx.Pool(opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		p.Terminate()
		joinWithin(t, p)
	})
	return p
}

// testCtx is a context that fails the test's calls instead of letting
// them hang.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPoolMapApplyImap(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx := testCtx(t)
			p := newPool(t, method, mp.PoolOptions{Processes: 2})
			items := make([]int, 1000)
			for i := range items {
				items[i] = i
			}
			got, err := mp.Map[int, int](ctx, p, sq, items, 0)
			require.NoError(t, err)
			for i, v := range got {
				require.Equal(t, i*i, v)
			}
			sum, err := mp.Apply[int](ctx, p, add, 2, 3)
			require.NoError(t, err)
			assert.Equal(t, 5, sum)
			name, err := mp.Apply[string](ctx, p, whoAmI)
			require.NoError(t, err)
			prefix := workerPrefix[method]
			assert.Contains(t, name, prefix)
			n := 0
			for v, err := range mp.Imap[int, int](ctx, p, sq, func(yield func(int) bool) {
				for i := range 500 {
					if !yield(i) {
						return
					}
				}
			}, 1) {
				require.NoError(t, err)
				require.Equal(t, n*n, v)
				n++
			}
			assert.Equal(t, 500, n)
		})
	}
}

func TestPoolTaskErrors(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, quickMethod, mp.PoolOptions{Processes: 2})
	_, err := mp.Map[int, int](ctx, p, failOn, []int{0, 1, 2, 3, 4}, 1)
	var te *mp.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 3, te.Index)
	assert.Equal(t, "no 3", te.Message)
	_, err = mp.Map[int, int](ctx, p, panicOn, []int{1, 5, 7}, 0)
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 1, te.Index)
	assert.Contains(t, te.Message, "panic: five")
	assert.Contains(t, te.Message, "panicOn")
	_, err = mp.Map[string, int](ctx, p, sq, []string{"a"}, 0)
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	_, err = mp.Map[int, string](ctx, p, sq, []int{1}, 0)
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	got, err := mp.Map[int, int](ctx, p, sq, []int{4}, 0)
	require.NoError(t, err)
	assert.Equal(t, []int{16}, got)
	require.True(t, errors.Is(p.Join(), mp.ErrPoolRunning))
}

// started is where the tasks of a test's pool tell it they started: the
// pool's Initializer gives each worker the queue.
var started *mp.Queue[int]

func keepStarted(q *mp.Queue[int]) { started = q }

// announceThenSleep tells the test its worker's pid, then sleeps.
func announceThenSleep(ms int) int {
	if err := started.Put(os.Getpid()); err != nil {
		panic(err)
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return ms
}

func exitIn(code int) int { os.Exit(code); return 0 }

func failingInit() error { return errors.New("no model file") }

// startPoolInWorker tries to start a pool from a worker.
func startPoolInWorker() (bool, error) {
	_, err := mp.NewPool(mp.PoolOptions{Processes: 1})
	return errors.Is(err, mp.ErrDaemonChildren), nil
}

func init() {
	mp.Register(keepStarted)
	mp.Register(announceThenSleep)
	mp.Register(exitIn)
	mp.Register(failingInit)
	mp.Register(startPoolInWorker)
}

// announcingPool is a pool whose tasks can announce themselves, and the
// queue they do it on.
func announcingPool(t *testing.T, method mp.StartMethod, processes int) (*mp.Pool, *mp.Queue[int]) {
	q, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	return newPool(t, method, mp.PoolOptions{Processes: processes, Initializer: keepStarted, InitArgs: []any{q}}), q
}

func getWithin(t *testing.T, q *mp.Queue[int]) int {
	t.Helper()
	v, err := q.GetTimeout(10 * time.Second)
	require.NoError(t, err, "no task announced itself within 10 s")
	return v
}

// withStartFrames runs f with workers that say which task they start in
// frames, as they do where there are no memory files for their pages.
func withStartFrames(t *testing.T, f func(t *testing.T)) {
	t.Run("start-frames", func(t *testing.T) {
		t.Cleanup(mp.PoolStartFrames())
		f(t)
	})
}

func TestPoolWorkerKilledMidTaskFailsThatTaskOnly(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) { killedMidTask(t, method) })
	}
	withStartFrames(t, func(t *testing.T) { killedMidTask(t, quickMethod) })
}

func killedMidTask(t *testing.T, method mp.StartMethod) {
	ctx := testCtx(t)
	p, q := announcingPool(t, method, 2)
	victim := mp.ApplyAsync[int](p, announceThenSleep, 60_000)
	pid := getWithin(t, q)
	others := make([]*mp.AsyncResult[int], 6)
	for i := range others {
		others[i] = mp.ApplyAsync[int](p, announceThenSleep, 10)
	}
	require.NoError(t, killPid(pid))
	_, err := victim.GetTimeout(10 * time.Second)
	var te *mp.TaskError
	require.ErrorAs(t, err, &te)
	require.NotNil(t, te.Exit)
	assert.Equal(t, -9, te.Exit.Code)
	assert.Equal(t, pid, te.Exit.Pid)
	assert.Contains(t, err.Error(), "SIGKILL")
	var ee *mp.ExitError
	assert.ErrorAs(t, err, &ee)
	for _, r := range others {
		v, err := r.GetTimeout(10 * time.Second)
		require.NoError(t, err)
		assert.Equal(t, 10, v)
	}
	// The pool replaced the worker.
	eventually(t, 10*time.Second, func() bool { return len(mp.ActiveChildren()) >= 2 }, "no replacement worker")
	got, err := mp.Map[int, int](ctx, p, sq, []int{1, 2, 3}, 1)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 4, 9}, got)
}

func TestPoolIdleWorkerKilledLosesNoTask(t *testing.T) {
	t.Run("page", idleKilled)
	withStartFrames(t, idleKilled)
}

func idleKilled(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, quickMethod, mp.PoolOptions{Processes: 2})
	_, err := mp.Apply[int](ctx, p, sq, 2) // both workers are up
	require.NoError(t, err)
	workers := mp.ActiveChildren()
	require.Len(t, workers, 2)
	require.NoError(t, workers[0].Kill())
	require.NoError(t, workers[1].Kill())
	items := make([]int, 200)
	for i := range items {
		items[i] = i
	}
	got, err := mp.Map[int, int](ctx, p, sq, items, 3)
	require.NoError(t, err)
	for i, v := range got {
		require.Equal(t, i*i, v)
	}
	for _, w := range workers {
		assert.NotContains(t, mp.ActiveChildren(), w)
	}
}

func TestPoolWorkerThatExitsFailsItsTask(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, mp.Spawn, mp.PoolOptions{Processes: 1})
	_, err := mp.Apply[int](ctx, p, exitIn, 7)
	var te *mp.TaskError
	require.ErrorAs(t, err, &te)
	require.NotNil(t, te.Exit)
	assert.Equal(t, 7, te.Exit.Code)
	assert.Regexp(t, `^multiprocessing: task: its worker died while it ran it: process SpawnPoolWorker-\d+ \(pid \d+\) exited with code 7$`, err.Error())
	v, err := mp.Apply[int](ctx, p, sq, 3)
	require.NoError(t, err)
	assert.Equal(t, 9, v)
}

func TestPoolTerminateFailsEveryPendingResult(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			p, q := announcingPool(t, method, 2)
			results := make([]*mp.AsyncResult[int], 10)
			for i := range results {
				results[i] = mp.ApplyAsync[int](p, announceThenSleep, 60_000)
			}
			many := mp.MapAsync[int, int](p, announceThenSleep, []int{60_000, 60_000, 60_000}, 1)
			getWithin(t, q)
			getWithin(t, q)
			require.NoError(t, p.Terminate())
			for _, r := range results {
				_, err := r.GetTimeout(10 * time.Second)
				assert.ErrorIs(t, err, mp.ErrPoolTerminated)
			}
			_, err := many.GetTimeout(10 * time.Second)
			assert.ErrorIs(t, err, mp.ErrPoolTerminated)
			joinWithin(t, p)
			_, err = mp.ApplyAsync[int](p, sq, 1).Get()
			assert.ErrorIs(t, err, mp.ErrPoolTerminated)
		})
	}
}

func joinWithin(t *testing.T, p *mp.Pool) {
	t.Helper()
	joined := make(chan error, 1)
	go func() { joined <- p.Join() }()
	select {
	case err := <-joined:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Join did not return within 10 s")
	}
}

func TestPoolCancelReturnsAtOnceAndDropsTasksNotStarted(t *testing.T) {
	p, q := announcingPool(t, warmMethod, 2)
	ctx, cancel := context.WithCancel(testCtx(t))
	items := make([]int, 20)
	for i := range items {
		items[i] = 300
	}
	returned := make(chan error, 1)
	go func() {
		_, err := mp.Map[int, int](ctx, p, announceThenSleep, items, 1)
		returned <- err
	}()
	getWithin(t, q)
	getWithin(t, q)
	cancel()
	select {
	case err := <-returned:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(250 * time.Millisecond):
		t.Fatal("Map did not return before its running tasks ended")
	}
	require.NoError(t, p.Close())
	joinWithin(t, p)
	_, err := q.GetTimeout(0)
	assert.ErrorIs(t, err, mp.ErrEmpty, "a task started after the cancel")
}

func TestPoolInitializerThatFailsBreaksThePool(t *testing.T) {
	p := newPool(t, quickMethod, mp.PoolOptions{Processes: 2, Initializer: failingInit})
	_, err := mp.ApplyAsync[int](p, sq, 2).GetTimeout(10 * time.Second)
	require.ErrorIs(t, err, mp.ErrInitializer)
	var ee *mp.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.Code)
	assert.Contains(t, err.Error(), "no model file")
	assert.Contains(t, err.Error(), workerPrefix[quickMethod])
	// No worker is started again.
	eventually(t, 10*time.Second, func() bool { return len(mp.ActiveChildren()) == 0 }, "workers left running")
	_, err = mp.Apply[int](testCtx(t), p, sq, 2)
	assert.ErrorIs(t, err, mp.ErrInitializer)
	require.NoError(t, p.Close())
	joinWithin(t, p)
}

func TestPoolImapStopsReadingAnEndlessSequence(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, warmMethod, mp.PoolOptions{Processes: 2})
	var read atomic.Int64
	returned := make(chan struct{})
	endless := func(yield func(int) bool) {
		defer close(returned)
		for i := 0; ; i++ {
			read.Add(1)
			if !yield(i) {
				return
			}
		}
	}
	n := 0
	for v, err := range mp.Imap[int, int](ctx, p, sq, endless, 1) {
		require.NoError(t, err)
		require.Equal(t, n*n, v)
		if n++; n == 100 {
			break
		}
	}
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the sequence was still read 10 s after the loop stopped")
	}
	assert.LessOrEqual(t, read.Load(), int64(100+2*(mp.PoolMaxWindow+2)+1))
}

func TestPoolImapYieldsFailuresInPlace(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, quickMethod, mp.PoolOptions{Processes: 2})
	var got []int
	var failed []int
	for v, err := range mp.Imap[int, int](ctx, p, failOn, slices.Values([]int{0, 1, 2, 3, 4, 5, 13, 7}), 3) {
		var te *mp.TaskError
		if errors.As(err, &te) {
			failed = append(failed, te.Index)
			continue
		}
		require.NoError(t, err)
		got = append(got, v)
	}
	assert.Equal(t, []int{0, 1, 2, 4, 5, 7}, got)
	assert.Equal(t, []int{3, 6}, failed)
	seen := map[int]bool{}
	for v, err := range mp.ImapUnordered[int, int](ctx, p, sq, slices.Values([]int{1, 2, 3, 4, 5}), 2) {
		require.NoError(t, err)
		seen[v] = true
	}
	assert.Equal(t, map[int]bool{1: true, 4: true, 9: true, 16: true, 25: true}, seen)
}

func TestPoolWorkersAreDaemonsAndRecycled(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, warmMethod, mp.PoolOptions{Processes: 1, MaxTasksPerChild: 2})
	refused, err := mp.Apply[bool](ctx, p, startPoolInWorker)
	require.NoError(t, err)
	assert.True(t, refused, "a worker started a pool")
	pids := map[int]int{}
	for range 6 {
		pid, err := mp.Apply[int](ctx, p, workerPid)
		require.NoError(t, err)
		pids[pid]++
	}
	assert.Len(t, pids, 4) // 7 tasks, 2 a worker: the first worker ran 1 of these
	for _, w := range mp.ActiveChildren() {
		assert.True(t, w.Daemon)
	}
}

func TestPoolAsyncResultAndLifecycle(t *testing.T) {
	p, q := announcingPool(t, quickMethod, 1)
	r := mp.ApplyAsync[int](p, announceThenSleep, 200)
	assert.False(t, r.Ready())
	_, err := r.Successful()
	assert.ErrorIs(t, err, mp.ErrNotReady)
	_, err = r.GetTimeout(0)
	assert.ErrorIs(t, err, mp.ErrTimeout)
	getWithin(t, q)
	assert.ErrorIs(t, p.Join(), mp.ErrPoolRunning)
	require.NoError(t, p.Close())
	_, err = mp.ApplyAsync[int](p, sq, 1).Get()
	assert.ErrorIs(t, err, mp.ErrPoolClosed)
	assert.EqualError(t, err, "multiprocessing: Pool not running")
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a task submitted before Close did not finish")
	}
	r.Wait()
	ok, err := r.Successful()
	assert.True(t, ok)
	assert.NoError(t, err)
	v, err := r.Get()
	require.NoError(t, err)
	assert.Equal(t, 200, v)
	joinWithin(t, p)
	assert.Equal(t, 1, p.Processes())
}

func TestPoolRefusesBadOptionsAndTargets(t *testing.T) {
	_, err := mp.NewPool(mp.PoolOptions{MaxTasksPerChild: -1})
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	_, err = mp.NewPool(mp.PoolOptions{InitArgs: []any{1}})
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	_, err = mp.NewPool(mp.PoolOptions{Processes: 1, Initializer: keepStarted, InitArgs: []any{"not a queue"}})
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	assert.Empty(t, mp.ActiveChildren())

	ctx := testCtx(t)
	p := newPool(t, quickMethod, mp.PoolOptions{Processes: 1})
	_, err = mp.Apply[int](ctx, p, add, 1)
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	assert.Contains(t, err.Error(), "takes 2 arguments, 1 given")
	_, err = mp.Apply[int](ctx, p, add, 1, "two")
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	assert.Contains(t, err.Error(), "argument 2: have string, want int")
	_, err = mp.Map[int, int](ctx, p, add, []int{1}, 0)
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	_, err = mp.Map[int, int](ctx, p, unregistered, []int{1}, 0)
	assert.ErrorIs(t, err, mp.ErrNotRegistered)
	for _, err := range mp.Imap[string, int](ctx, p, sq, slices.Values([]string{"x"}), 1) {
		assert.ErrorIs(t, err, mp.ErrBadArgs)
		assert.Contains(t, err.Error(), "parameter 1: have items of string, want int")
	}
	_, err = mp.StarMap[int](ctx, p, add, [][]any{{1, 2}, {3}}, 0)
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	got, err := mp.StarMap[int](ctx, p, add, [][]any{{1, 2}, {3, 4}}, 0)
	require.NoError(t, err)
	assert.Equal(t, []int{3, 7}, got)
	empty, err := mp.Map[int, int](ctx, p, sq, nil, 0)
	require.NoError(t, err)
	assert.Empty(t, empty)
}

// workerPrefix is how Python names the workers of a pool of each method.
var workerPrefix = map[mp.StartMethod]string{mp.Fork: "ForkPoolWorker-", mp.Spawn: "SpawnPoolWorker-", mp.Forkserver: "ForkServerPoolWorker-"}
