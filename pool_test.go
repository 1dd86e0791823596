package multiprocessing_test

import (
	"context"
	"errors"
	"fmt"
	"os"
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
		joined := make(chan error, 1)
		go func() { joined <- p.Join() }()
		select {
		case err := <-joined:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Join did not return within 10 s of Terminate")
		}
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
			prefix := map[mp.StartMethod]string{mp.Fork: "ForkPoolWorker-", mp.Spawn: "SpawnPoolWorker-", mp.Forkserver: "ForkServerPoolWorker-"}[method]
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
	p := newPool(t, mp.Fork, mp.PoolOptions{Processes: 2})
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
