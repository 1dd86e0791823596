package multiprocessing_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
	mpc "github.com/mpgo/multiprocessing/connection"
)

func init() {
	mp.Register(putRemotely)
	mp.Register(serveQueue)
}

// putRemotely dials the queue served at address and puts 0 to n-1.
func putRemotely(network, address string, key []byte, n int) error {
	q, err := mpc.DialQueue[int](network, address, key)
	if err != nil {
		return err
	}
	defer q.Close()
	for i := range n {
		if err := q.Put(i); err != nil {
			return err
		}
	}
	return nil
}

// serveQueue serves a queue holding "first" on a TCP port of 127.0.0.1,
// which it sends on addr, until it is killed.
func serveQueue(addr *mp.Connection, key []byte) error {
	q, err := mp.NewQueue[string](0)
	if err != nil {
		return err
	}
	if err := q.Put("first"); err != nil {
		return err
	}
	l, err := mpc.Listen("tcp", "127.0.0.1:0", key)
	if err != nil {
		return err
	}
	if err := addr.Send(l.Addr().String()); err != nil {
		return err
	}
	return mpc.Serve(q, l)
}

// served serves q on a new listener on network, and stops it when the
// test ends.
func served[T any](t *testing.T, q *mp.Queue[T], network string, key []byte) (*mpc.Listener, chan error) {
	t.Helper()
	l, err := mpc.Listen(network, listenAddr(t, network), key)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- mpc.Serve(q, l) }()
	t.Cleanup(func() {
		l.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return once its listener was closed")
		}
	})
	return l, done
}

func TestQueueServedToOtherPrograms(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			key := []byte("queue key")
			q, err := mp.NewQueue[int](2)
			require.NoError(t, err)
			defer q.Close()
			l, _ := served(t, q, network, key)
			c, err := mpc.DialQueue[int](network, l.Addr().String(), key)
			require.NoError(t, err)
			defer c.Close()

			require.NoError(t, c.Put(1))
			require.NoError(t, c.Put(2))
			assert.ErrorIs(t, c.PutTimeout(3, 50*time.Millisecond), mp.ErrFull, "the client learnt maxsize 2")
			assert.ErrorIs(t, c.PutNowait(3), mp.ErrFull)
			assert.Equal(t, 2, c.Qsize())
			assert.True(t, c.Full())
			v, err := q.Get()
			require.NoError(t, err)
			assert.Equal(t, 1, v)
			v, err = c.Get()
			require.NoError(t, err)
			assert.Equal(t, 2, v)
			_, err = c.GetTimeout(50 * time.Millisecond)
			assert.ErrorIs(t, err, mp.ErrEmpty)
			_, err = c.GetNowait()
			assert.ErrorIs(t, err, mp.ErrEmpty)
			assert.True(t, c.Empty())

			// Another program puts 100 items; they arrive in order.
			p := startTarget(t, mp.Spawn, putRemotely, network, l.Addr().String(), key, 100)
			for i := range 100 {
				v, err := q.GetTimeout(20 * time.Second)
				require.NoError(t, err)
				require.Equal(t, i, v)
			}
			require.NoError(t, p.Join())

			// A Get that waits for longer than a call's slice.
			time.AfterFunc(1500*time.Millisecond, func() { q.Put(7) })
			v, err = c.GetTimeout(10 * time.Second)
			require.NoError(t, err)
			assert.Equal(t, 7, v)

			_, err = mpc.DialQueue[int](network, l.Addr().String(), []byte("wrong"))
			assert.ErrorIs(t, err, mp.ErrAuthentication)
		})
	}
}

func TestServedQueueClosedGivesClientsErrQueueClosed(t *testing.T) {
	q, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	_, done := func() (*mpc.Listener, chan error) {
		l, err := mpc.Listen("tcp", "127.0.0.1:0", nil)
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		done := make(chan error, 1)
		go func() { done <- mpc.Serve(q, l) }()
		c, err := mpc.DialQueue[int]("tcp", l.Addr().String(), nil)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		waiting := make(chan error, 1)
		go func() {
			_, err := c.Get()
			waiting <- err
		}()
		idle, err := mpc.DialQueue[int]("tcp", l.Addr().String(), nil)
		require.NoError(t, err)
		t.Cleanup(func() { idle.Close() })
		assert.Equal(t, 0, idle.Qsize())
		time.AfterFunc(100*time.Millisecond, func() { q.Close() })
		select {
		case err := <-waiting:
			assert.ErrorIs(t, err, mp.ErrQueueClosed, "a Get that waited")
		case <-time.After(10 * time.Second):
			t.Fatal("a waiting Get did not end when the served queue closed")
		}
		assert.ErrorIs(t, idle.Put(1), mp.ErrQueueClosed, "an idle client's next call")
		return l, done
	}()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return once its queue was closed")
	}
}

func TestOpenQueueOverTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := mpc.NewListener(tls.NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}), []byte("k"))
	q, err := mp.NewQueue[string](0)
	require.NoError(t, err)
	defer q.Close()
	done := make(chan error, 1)
	go func() { done <- mpc.Serve(q, l) }()
	defer func() { l.Close(); <-done }()

	raw, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	c, err := mpc.NewClient(tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}), []byte("k"))
	require.NoError(t, err)
	rq, err := mpc.OpenQueue[string](c)
	require.NoError(t, err)
	defer rq.Close()
	for i := range 10 {
		require.NoError(t, rq.Put(fmt.Sprint("item ", i)))
	}
	for i := range 10 {
		v, err := q.Get()
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint("item ", i), v)
	}

	a, b, err := mp.Pipe(true)
	if errors.Is(err, mp.ErrUnsupported) {
		return // Windows has no Pipe yet
	}
	require.NoError(t, err)
	defer a.Close()
	defer b.Close()
	_, err = mpc.OpenQueue[string](a)
	assert.ErrorIs(t, err, mp.ErrBadArgs)
}

func TestAPeerWithoutTheKeyLearnsAndChangesNothing(t *testing.T) {
	q, err := mp.NewQueue[string](0)
	require.NoError(t, err)
	defer q.Close()
	require.NoError(t, q.Put("the secret"))
	l, _ := served(t, q, "tcp", []byte("key"))

	raw, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	require.NoError(t, raw.SetDeadline(time.Now().Add(20*time.Second)))
	// What a client of the queue sends once past the handshake: a Get,
	// and a Put, each framed as Python frames a message.
	frame := func(b []byte) []byte { return append([]byte{0, 0, 0, byte(len(b))}, b...) }
	get := []byte{'G', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	put := append([]byte{'P', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "planted"...)
	_, err = raw.Write(append(frame(get), frame(put)...))
	require.NoError(t, err)
	heard, err := io.ReadAll(raw)
	require.NoError(t, err, "the server closes the connection")
	assert.NotContains(t, string(heard), "secret")
	assert.Contains(t, string(heard), "#CHALLENGE#")
	assert.Contains(t, string(heard), "#FAILURE#")
	assert.Equal(t, 1, q.Qsize(), "nothing was taken, nothing planted")
	v, err := q.GetNowait()
	require.NoError(t, err)
	assert.Equal(t, "the secret", v)
}

func TestServedQueueCarriesLargeItems(t *testing.T) {
	q, err := mp.NewQueue[[]byte](0)
	require.NoError(t, err)
	defer q.Close()
	l, _ := served(t, q, "tcp", nil)
	c, err := mpc.DialQueue[[]byte]("tcp", l.Addr().String(), nil)
	require.NoError(t, err)
	defer c.Close()
	big := pattern(8 << 20)
	require.NoError(t, c.Put(big))
	got, err := q.Get()
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, got))
	require.NoError(t, q.Put(big))
	got, err = c.Get()
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, got))
}

func TestNetworkConnectionClosedWhileReceiving(t *testing.T) {
	l, err := mpc.Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	defer l.Close()
	c, err := mpc.Dial("tcp", l.Addr().String(), nil)
	require.NoError(t, err)
	peer, err := l.Accept()
	require.NoError(t, err)
	defer peer.Close()
	got := make(chan error, 1)
	go func() {
		_, err := c.RecvBytes()
		got <- err
	}()
	time.AfterFunc(20*time.Millisecond, func() { c.Close() })
	select {
	case err := <-got:
		assert.ErrorIs(t, err, mp.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a RecvBytes")
	}
}
