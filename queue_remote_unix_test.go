//go:build unix

package multiprocessing_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
	mpc "github.com/mpgo/multiprocessing/connection"
)

// servingChild starts a child that serves a queue holding "first" (see
// serveQueue), dials it, and takes "first" from it.
func servingChild(t *testing.T) (*mp.Process, *mp.Queue[string]) {
	t.Helper()
	r, w, err := mp.Pipe(false)
	require.NoError(t, err)
	defer r.Close()
	p := startTarget(t, quickMethod, serveQueue, w, []byte("k"))
	w.Close()
	ok, err := r.Poll(20 * time.Second)
	require.NoError(t, err)
	require.True(t, ok, "the server sent no address")
	var addr string
	require.NoError(t, r.Recv(&addr))
	c, err := mpc.DialQueue[string]("tcp", addr, []byte("k"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	v, err := c.Get()
	require.NoError(t, err)
	require.Equal(t, "first", v)
	return p, c
}

// A server that stops answering without closing anything (SIGSTOP: its
// sockets stay open, the kernel still acknowledges) is noticed by the
// calls' own deadlines.
func TestServerThatFallsSilentGivesItsClientsAnError(t *testing.T) {
	p, c := servingChild(t)
	require.NoError(t, syscall.Kill(p.Pid(), syscall.SIGSTOP))
	defer syscall.Kill(p.Pid(), syscall.SIGCONT)
	began := time.Now()
	_, err := c.Get()
	assert.ErrorIs(t, err, mp.ErrQueueClosed)
	assert.Less(t, time.Since(began), 10*time.Second, "a silent server held a Get")
}

func TestServerThatDiesGivesItsClientsAnError(t *testing.T) {
	p, c := servingChild(t)
	got := make(chan error, 1)
	go func() {
		_, err := c.Get()
		got <- err
	}()
	require.NoError(t, p.Kill())
	select {
	case err := <-got:
		assert.ErrorIs(t, err, mp.ErrQueueClosed)
	case <-time.After(8 * time.Second):
		t.Fatal("a client waited on a dead server")
	}
}
