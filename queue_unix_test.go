//go:build unix

// The queue tests of what Windows lacks: the lanes through which Linux's
// children get items.

package multiprocessing_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

// The same for waits in a child: the owner's Close ends them.
func TestOwnersCloseEndsWaitsInChildren(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			empty, err := mp.NewQueue[int](0)
			require.NoError(t, err)
			full, err := mp.NewJoinableQueue[int](1)
			require.NoError(t, err)
			require.NoError(t, full.Put(1))
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			p := ctx.Process(waitUntilClosed, empty, full)
			require.NoError(t, p.Start())
			// The Get on the unbounded queue waits in its lane, where this
			// process cannot see it: the lane handed out says it has begun.
			eventually(t, 20*time.Second, func() bool {
				return mp.QueueLaneShared(empty) && mp.QueueWaiters(full.Queue) == 2
			}, "the child's three calls wait")
			require.NoError(t, empty.Close())
			require.NoError(t, full.Close())
			require.NoError(t, p.JoinTimeout(20*time.Second))
		})
	}
}
