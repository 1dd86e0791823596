//go:build unix

package multiprocessing_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

// A server that stops answering without closing anything (SIGSTOP: its
// sockets stay open, the kernel still acknowledges) is noticed by the
// calls' own deadlines.
func TestServerThatFallsSilentGivesItsClientsAnError(t *testing.T) {
	r, w, err := mp.Pipe(false)
	require.NoError(t, err)
	defer r.Close()
	p := startTarget(t, mp.Fork, serveQueue, w, []byte("k"))
	w.Close()
	require.True(t, mustPoll(t, r), "the server sent no address")
	var addr string
	require.NoError(t, r.Recv(&addr))
	c, err := mp.DialQueue[string]("tcp", addr, []byte("k"))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Get()
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(p.Pid(), syscall.SIGSTOP))
	defer syscall.Kill(p.Pid(), syscall.SIGCONT)
	began := time.Now()
	_, err = c.Get()
	assert.ErrorIs(t, err, mp.ErrQueueClosed)
	assert.Less(t, time.Since(began), 10*time.Second, "a silent server held a Get")
}

func TestServerThatDiesGivesItsClientsAnError(t *testing.T) {
	r, w, err := mp.Pipe(false)
	require.NoError(t, err)
	defer r.Close()
	p := startTarget(t, mp.Fork, serveQueue, w, []byte("k"))
	w.Close()
	require.True(t, mustPoll(t, r), "the server sent no address")
	var addr string
	require.NoError(t, r.Recv(&addr))
	c, err := mp.DialQueue[string]("tcp", addr, []byte("k"))
	require.NoError(t, err)
	defer c.Close()
	v, err := c.Get()
	require.NoError(t, err)
	assert.Equal(t, "first", v)
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

func mustPoll(t *testing.T, c *mp.Connection) bool {
	t.Helper()
	ok, err := c.Poll(20 * time.Second)
	require.NoError(t, err)
	return ok
}
