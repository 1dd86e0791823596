//go:build unix

package queue

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// rawConnection opens a connection to the broker of q, an End that
// NewOwner made, as another process would, without the client's framing
// discipline.
func rawConnection(t *testing.T, q End) *queueClient {
	t.Helper()
	c, err := dialQueue(q.Door())
	require.NoError(t, err)
	return c
}

func TestBrokerDropsGarbageAndKeepsServing(t *testing.T) {
	q, err := NewOwner(0)
	require.NoError(t, err)
	defer q.Close()
	for name, garbage := range map[string][]byte{
		"absurd length":     {0xff, 0xff, 0xff, 0xff},
		"unknown operation": append([]byte{0, 0, 0, 13}, (&wire.Request{Op: '?'}).Encode()...),
		"short request":     {0, 0, 0, 2, 'P', 0},
	} {
		c := rawConnection(t, q)
		_, err := c.conn.Write(garbage)
		require.NoError(t, err, name)
		// The broker hangs up: the next call on this connection fails.
		_, err = c.call(wire.OpSize, 0, nil, false)
		assert.ErrorIs(t, err, mperr.ErrQueueClosed, name)
		ownfd.Close(c.conn)
	}
	// A truncated frame from a process that died mid-Put.
	c := rawConnection(t, q)
	_, err = c.conn.Write([]byte{0, 0, 0, 100, 'P'})
	require.NoError(t, err)
	ownfd.Close(c.conn)

	// The queue still works, for this process and others, with nothing
	// from the garbage in it.
	other := rawConnection(t, q)
	defer other.close()
	require.NoError(t, q.Put([]byte("1"), -1))
	rep, err := other.call(wire.OpGet, -1, nil, false)
	require.NoError(t, err)
	assert.Equal(t, []byte("1"), rep.Payload)
	assert.Equal(t, 0, q.Qsize())
}

func TestRemoteGetTimesOutAndIsForgotten(t *testing.T) {
	q, err := NewOwner(0)
	require.NoError(t, err)
	defer q.Close()
	c := rawConnection(t, q)
	start := time.Now()
	_, err = c.call(wire.OpGet, 30*time.Millisecond, nil, false)
	assert.ErrorIs(t, err, mperr.ErrEmpty)
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	// A Get left waiting by a connection that closes takes no item.
	go func() { _, _ = c.call(wire.OpGet, -1, nil, false) }()
	core := q.(*ownerEnd).core
	deadline := time.Now().Add(10 * time.Second)
	for core.waiting() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.Equal(t, 1, core.waiting())
	require.NoError(t, unix.Shutdown(ownfd.FD(c.conn), unix.SHUT_RDWR))
	for core.waiting() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.Equal(t, 0, core.waiting(), "the closed connection's Get is forgotten")
	require.NoError(t, q.Put([]byte("3"), -1))
	item, err := q.Get(0)
	require.NoError(t, err)
	assert.Equal(t, []byte("3"), item)
}

// waiting is the number of Gets waiting.
func (c *queueCore) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.getters)
}

// The door takes connections and requests for the lane; anything else is
// dropped, with its descriptor, and the queue goes on.
func TestDoorDropsUnknownRequests(t *testing.T) {
	q, err := NewOwner(0)
	require.NoError(t, err)
	defer q.Close()
	ours, theirs, err := ownfd.Socketpair(unix.SOCK_SEQPACKET, "test", true, true)
	require.NoError(t, err)
	defer ownfd.Close(ours)
	require.NoError(t, fdpass.SendMsg(q.Door(), []byte{'?'}, ownfd.FD(theirs)))
	ownfd.Close(theirs)
	require.NoError(t, ours.SetReadDeadline(time.Now().Add(10*time.Second)))
	var b [1]byte
	_, err = ours.Read(b[:])
	assert.ErrorIs(t, err, io.EOF, "the broker closes what it got with an unknown request")

	lane, err := requestLane(q.Door())
	require.NoError(t, err)
	require.NotNil(t, lane, "an unbounded queue has a lane")
	defer lane.close()
	require.NoError(t, q.Put([]byte("7"), -1))
	item, err := lane.get(10 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, []byte("7"), item)
	assert.Equal(t, 0, q.Qsize())
}

// A bounded queue gives no lane: its broker counts every item taken, to
// let a waiting Put in.
func TestBoundedQueueHasNoLane(t *testing.T) {
	q, err := NewOwner(3)
	require.NoError(t, err)
	defer q.Close()
	lane, err := requestLane(q.Door())
	require.NoError(t, err)
	assert.Nil(t, lane)
}

// A TaskDone too many in another process is the same error as in the
// owner's: it travels as a status of its own, not as text.
func TestRemoteTaskDoneTooManyIsErrTaskDone(t *testing.T) {
	q, err := NewOwner(0)
	require.NoError(t, err)
	defer q.Close()
	c := rawConnection(t, q)
	defer ownfd.Close(c.conn)
	require.NoError(t, q.Put([]byte("1"), -1))
	_, err = c.call(wire.OpDone, 0, nil, false)
	require.NoError(t, err, "one TaskDone for the one item put")
	_, err = c.call(wire.OpDone, 0, nil, false)
	assert.ErrorIs(t, err, errTaskDone)
}
