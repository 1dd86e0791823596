//go:build unix

// Tests that starting and joining processes, queues and pipes leaves
// nothing behind: goroutines, descriptors, zombies, processes, files.

package multiprocessing_test

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	mp "github.com/mpgo/multiprocessing"
	mpc "github.com/mpgo/multiprocessing/connection"
)

// TestThousandProcessesLeaveNothingBehind starts and joins 1,000 processes,
// 100 at a time, under each start method, and then finds none of what they
// used: no goroutine, descriptor, zombie, process or temporary file. Under
// -race, where a start costs three times as much, it does 200; CI runs the
// full count without -race.
func TestThousandProcessesLeaveNothingBehind(t *testing.T) {
	total := 1000
	if mp.RaceEnabled || testing.Short() {
		total = 200
	}
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			_, err = run(t, method, noop) // the forkserver, the first time
			require.NoError(t, err)
			settle(t, method)
			fds := openFDs(t)
			temps := tempEntries(t)
			ignore := goleak.IgnoreCurrent()

			pids := map[int]bool{}
			for batch := 0; batch < total/100; batch++ {
				procs := make([]*mp.Process, 100)
				for i := range procs {
					procs[i] = ctx.Process(noop)
					require.NoError(t, procs[i].Start())
					pids[procs[i].Pid()] = true
				}
				for _, p := range procs {
					require.NoError(t, p.Join())
					require.NoError(t, p.Close())
				}
			}
			require.Len(t, pids, total, "every process had its own pid")

			settle(t, method)
			assert.NoError(t, goleak.Find(ignore), "goroutines left")
			// The forkserver's warm children are others than before, with
			// as many descriptors: count, and name the new ones.
			assert.LessOrEqual(t, len(openFDs(t)), len(fds), "descriptors left; new since: %v", newFDs(t, fds))
			assert.Empty(t, zombies(t), "zombie children")
			assert.Empty(t, serverZombies(t), "zombie children of the forkserver")
			var alive []int
			for pid := range pids {
				if !gone(pid) {
					alive = append(alive, pid)
				}
			}
			assert.Empty(t, alive, "processes still running")
			assert.Equal(t, temps, tempEntries(t), "temporary files left")
			assert.Empty(t, mp.ActiveChildren())
		})
	}
}

// tempEntries lists the library's entries in the temporary directory.
func tempEntries(t *testing.T) []string {
	found, err := filepath.Glob(filepath.Join(os.TempDir(), "mpgo-*"))
	require.NoError(t, err)
	return found
}

func TestNoLeakOverManyCycles(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			cycle := func() {
				p := ctx.Process(noop)
				require.NoError(t, p.Start())
				require.NoError(t, p.Join())
				require.NoError(t, p.Close())
			}
			for range 5 {
				cycle()
			}
			settle(t, method)
			fds, goroutines := countFDs(t), runtime.NumGoroutine()
			for range 200 {
				cycle()
			}
			settle(t, method)
			eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines }, "goroutines grew")
			assert.LessOrEqual(t, countFDs(t), fds, "descriptors grew")
			assert.Empty(t, zombies(t), "zombie children")
		})
	}
}

func TestQueueAndPipeDescriptorsDoNotLeak(t *testing.T) {
	cycle := func() {
		// The child gets from in through its lane and puts into out.
		in, err := mp.NewQueue[int](0)
		require.NoError(t, err)
		out, err := mp.NewQueue[int](0)
		require.NoError(t, err)
		p := mp.NewProcess(echoQueue, in, out, 1)
		require.NoError(t, p.Start())
		require.NoError(t, in.Put(1))
		require.NoError(t, p.Join())
		_, err = out.Get()
		require.NoError(t, err)
		require.NoError(t, in.Close())
		require.NoError(t, out.Close())
		require.NoError(t, p.Close())

		a, b, err := mp.Pipe(true)
		require.NoError(t, err)
		p = mp.NewProcess(echoPipe, b)
		require.NoError(t, p.Start())
		require.NoError(t, b.Close())
		require.NoError(t, a.Close())
		require.NoError(t, p.Join())
		require.NoError(t, p.Close())
	}
	for range 5 {
		cycle()
	}
	fds, goroutines := countFDs(t), runtime.NumGoroutine()
	for range 200 {
		cycle()
	}
	eventually(t, 5*time.Second, func() bool { return countFDs(t) <= fds }, "descriptors grew")
	eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines }, "goroutines grew")
}

// Gets waiting at once in the process that made a queue use a few
// descriptors at most, however many they are, and all get their items.
func TestManyLocalGetsUseFewDescriptors(t *testing.T) {
	// A forkserver left by an earlier test may be handing over tickets,
	// descriptors that would be counted here.
	settle(t, "")
	q, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	defer q.Close()
	before := openFDs(t)
	const waiting = 50
	got := make(chan int, waiting)
	for range waiting {
		go func() {
			v, err := q.Get()
			assert.NoError(t, err)
			got <- v
		}()
	}
	eventually(t, 10*time.Second, func() bool { return mp.QueueWaiters(q) == waiting }, "the Gets wait")
	added := newFDs(t, before)
	assert.LessOrEqual(t, len(added), 4, "descriptors for %d waiting Gets: %v", waiting, added)
	sum := 0
	for i := range waiting {
		require.NoError(t, q.Put(i))
	}
	for range waiting {
		select {
		case v := <-got:
			sum += v
		case <-time.After(10 * time.Second):
			t.Fatal("a waiting Get did not get its item")
		}
	}
	assert.Equal(t, waiting*(waiting-1)/2, sum, "each item once")
}

// TestPoolsLeaveNothingBehind runs 100 pools of 10 tasks each, ended by
// Close and Join or by Terminate and Join, and one pool of 100,000 tasks,
// and then finds no goroutine, descriptor, zombie or process of theirs.
func TestPoolsLeaveNothingBehind(t *testing.T) {
	pools, tasks := 100, 100_000
	if mp.RaceEnabled || testing.Short() {
		pools, tasks = 20, 20_000
	}
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			pctx, err := mp.GetContext(method)
			require.NoError(t, err)
			// The forkserver, and the thread that starts daemons, the
			// first time.
			warm, err := pctx.Pool(mp.PoolOptions{Processes: 1})
			require.NoError(t, err)
			require.NoError(t, warm.Close())
			joinWithin(t, warm)
			settle(t, method)
			fds := openFDs(t)
			ignore := goleak.IgnoreCurrent()
			ctx := testCtx(t)
			pids := map[int]bool{}
			for i := range pools {
				p, err := pctx.Pool(mp.PoolOptions{Processes: 2})
				require.NoError(t, err)
				results := make([]*mp.AsyncResult[int], 10)
				for j := range results {
					results[j] = mp.ApplyAsync[int](p, workerPid)
				}
				for _, r := range results {
					pid, err := r.GetTimeout(10 * time.Second)
					require.NoError(t, err)
					pids[pid] = true
				}
				if i%2 == 0 {
					require.NoError(t, p.Close())
				} else {
					require.NoError(t, p.Terminate())
				}
				joinWithin(t, p)
			}
			p, err := pctx.Pool(mp.PoolOptions{Processes: 2})
			require.NoError(t, err)
			items := make([]int, tasks)
			for i := range items {
				items[i] = i
			}
			got, err := mp.Map[int, int](ctx, p, sq, items, 1)
			require.NoError(t, err)
			require.Len(t, got, tasks)
			require.Equal(t, (tasks-1)*(tasks-1), got[tasks-1])
			require.NoError(t, p.Close())
			joinWithin(t, p)

			settle(t, method)
			assert.NoError(t, goleak.Find(ignore), "goroutines left")
			assert.LessOrEqual(t, len(openFDs(t)), len(fds), "descriptors left; new since: %v", newFDs(t, fds))
			assert.Empty(t, zombies(t), "zombie children")
			assert.Empty(t, serverZombies(t), "zombie children of the forkserver")
			for pid := range pids {
				assert.True(t, gone(pid), "worker %d still running", pid)
			}
			assert.Empty(t, mp.ActiveChildren())
		})
	}
}

// Locks, events, shared values, listeners and served queues leave no
// descriptor and no goroutine once closed, and children that used them
// none either; a listener closed with handshakes under way neither.
func TestSharedObjectsAndListenersLeaveNothingBehind(t *testing.T) {
	_, err := run(t, mp.Spawn, noop) // spawn's /dev/null, opened once
	require.NoError(t, err)
	fds := openFDs(t)
	ignore := goleak.IgnoreCurrent()
	for range 20 {
		l, err := mp.NewLock()
		require.NoError(t, err)
		e, err := mp.NewEvent()
		require.NoError(t, err)
		v, err := mp.NewValue[int64](0)
		require.NoError(t, err)
		c, err := mp.NewCondition(nil)
		require.NoError(t, err)
		b, err := mp.NewBarrier(2, nil, 0)
		require.NoError(t, err)
		_, err = run(t, mp.Spawn, addUnderLock, v, 10)
		require.NoError(t, err)
		for _, closer := range []interface{ Close() error }{l, e, v, c, b} {
			require.NoError(t, closer.Close())
		}
	}

	q, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	ln, err := mpc.Listen("tcp", "127.0.0.1:0", []byte("k"))
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- mpc.Serve(q, ln) }()
	client, err := mpc.DialQueue[int]("tcp", ln.Addr().String(), []byte("k"))
	require.NoError(t, err)
	require.NoError(t, client.Put(1))
	silent, err := net.Dial("tcp", ln.Addr().String()) // a handshake under way
	require.NoError(t, err)
	require.NoError(t, ln.Close())
	require.NoError(t, <-served)
	require.NoError(t, client.Close())
	require.NoError(t, q.Close())
	silent.Close()

	eventually(t, 10*time.Second, func() bool { return goleak.Find(ignore) == nil }, "goroutines left")
	assert.LessOrEqual(t, len(openFDs(t)), len(fds), "descriptors left; new since: %v", newFDs(t, fds))
}
