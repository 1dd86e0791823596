//go:build unix

// The queue tests of what Windows lacks yet: pipes beside queues, and the
// lanes through which Linux's children get items.

package multiprocessing_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

func TestBigValues(t *testing.T) {
	const size = 64 << 20
	q, err := mp.NewQueue[[]byte](0)
	require.NoError(t, err)
	defer q.Close()
	p := mp.NewProcess(putBig, q, size)
	require.NoError(t, p.Start())
	v, err := q.GetTimeout(2 * time.Minute)
	require.NoError(t, err)
	require.NoError(t, p.Join())
	assert.Len(t, v, size)
	assert.True(t, bytes.Equal(v, bytes.Repeat([]byte{9}, size)))

	r, w, err := mp.Pipe(false)
	require.NoError(t, err)
	defer r.Close()
	p = mp.NewProcess(sendBig, w, size)
	require.NoError(t, p.Start())
	require.NoError(t, w.Close())
	b, err := r.RecvBytes()
	require.NoError(t, err)
	require.NoError(t, p.Join())
	assert.Len(t, b, size)
	assert.True(t, bytes.Equal(b, bytes.Repeat([]byte{7}, size)))
	_, err = r.RecvBytes()
	assert.Equal(t, io.EOF, err, "the sender exited")
}

func TestHandlesAsRunnerFields(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			q, err := mp.NewJoinableQueue[string](0)
			require.NoError(t, err)
			defer q.Close()
			r, w, err := mp.Pipe(false)
			require.NoError(t, err)
			defer r.Close()
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			g := &greeter{Out: q, Back: w}
			g.Process = ctx.Process(g)
			require.NoError(t, g.Start())
			require.NoError(t, w.Close())
			msg, err := q.GetTimeout(20 * time.Second)
			require.NoError(t, err)
			assert.Equal(t, "hello from "+g.Name, msg)
			var pid int
			require.NoError(t, r.Recv(&pid))
			assert.Equal(t, g.Pid(), pid)
			require.NoError(t, g.Join())
		})
	}
}

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
