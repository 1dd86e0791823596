// Tests that starting and joining processes, queues and pipes leaves
// nothing behind: goroutines, descriptors, zombies, processes, files.

package multiprocessing_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	mp "github.com/mpgo/multiprocessing"
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
