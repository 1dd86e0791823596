//go:build unix

// Tests of Pipe and Connection with real children: senders killed in the
// middle of a message, and senders in parallel.

package multiprocessing_test

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

func sendUntilKilled(c *mp.Connection, size int) error {
	for seq := 0; ; seq++ {
		if err := c.SendBytes(numbered(seq, size)); err != nil {
			return err
		}
	}
}

// sendInChunksUntilKilled is sendUntilKilled with every message in
// chunks, as small ones go.
func sendInChunksUntilKilled(c *mp.Connection, size int) error {
	mp.SendPipesInChunks()
	return sendUntilKilled(c, size)
}

func sendThree(c *mp.Connection) error {
	for i := range 3 {
		if err := c.SendBytes([]byte("after-" + strconv.Itoa(i))); err != nil {
			return err
		}
	}
	return nil
}

// sendNumbered sends messages first to first+count-1, of size bytes each.
func sendNumbered(c *mp.Connection, first, count, size int) error {
	for seq := first; seq < first+count; seq++ {
		if err := c.SendBytes(numbered(seq, size)); err != nil {
			return err
		}
	}
	return c.Close()
}

// sendersPipe returns the context of method and a one-way pipe for
// children to send on. Its reading end closes when the test ends, or after
// a minute, so that reads end whatever goes wrong.
func sendersPipe(t *testing.T, method mp.StartMethod) (*mp.Context, *mp.Connection, *mp.Connection) {
	t.Helper()
	ctx, err := mp.GetContext(method)
	require.NoError(t, err)
	r, w, err := mp.Pipe(false)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	timer := time.AfterFunc(time.Minute, func() { r.Close() })
	t.Cleanup(func() { timer.Stop() })
	return ctx, r, w
}

// startNumberedSender starts target, a sender of numbered bigMessage-byte
// messages on w, and waits on r for its first, whole.
func startNumberedSender(t *testing.T, ctx *mp.Context, r, w *mp.Connection, target any) *mp.Process {
	t.Helper()
	p := ctx.Process(target, w, bigMessage)
	require.NoError(t, p.Start())
	first, err := r.RecvBytes()
	require.NoError(t, err)
	seq, whole := checkNumbered(first, bigMessage)
	require.True(t, whole && seq == 0, "message %d whole: %v", seq, whole)
	return p
}

// A sender killed in the middle of a message sent in chunks leaves the
// pipe usable, and the cut message is reported at the end of the stream.
func TestKilledMidSendLeavesThePipeUsable(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, r, w := sendersPipe(t, method)

			killed := startNumberedSender(t, ctx, r, w, sendInChunksUntilKilled)
			// The next message has begun to arrive, and four MiB cannot all
			// be in the socket: the child is in the middle of sending it.
			ready, err := r.Poll(20 * time.Second)
			require.NoError(t, err)
			require.True(t, ready)
			require.NoError(t, killed.Kill())
			assert.Error(t, killed.Join())
			code, _ := killed.ExitCode()
			assert.Equal(t, -int(syscall.SIGKILL), code)

			other := ctx.Process(sendThree, w)
			require.NoError(t, other.Start())
			require.NoError(t, w.Close())
			var got []string
			var cut []error
			for {
				b, err := r.RecvBytes()
				if err == io.EOF || errors.Is(err, mp.ErrClosed) {
					break
				}
				if err != nil {
					cut = append(cut, err)
					continue
				}
				got = append(got, string(b))
			}
			assert.Equal(t, []string{"after-0", "after-1", "after-2"}, got, "the other sender's messages arrive whole, once, in order")
			require.Len(t, cut, 1, "the cut message is reported once, at the end")
			assert.ErrorContains(t, cut[0], "1 message(s) cut short: the sender died while sending")
			require.NoError(t, other.Join())
		})
	}
}

// A large message arrives whole or not at all: a sender killed while it
// sends them cuts at most the one it was filling, reported at the end.
func TestKilledSenderOfLargeMessagesDeliversNoneInPart(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, r, w := sendersPipe(t, method)
			killed := startNumberedSender(t, ctx, r, w, sendUntilKilled)
			require.NoError(t, killed.Kill())
			assert.Error(t, killed.Join())

			other := ctx.Process(sendThree, w)
			require.NoError(t, other.Start())
			require.NoError(t, w.Close())
			var after arrivals
			for {
				b, err := r.RecvBytes()
				if err == io.EOF {
					break
				}
				if err != nil && strings.Contains(err.Error(), "cut short") {
					assert.ErrorContains(t, err, "1 message(s) cut short", "only the message being filled is cut")
					break
				}
				require.NoError(t, err)
				after.note(t, b)
			}
			assert.Equal(t, []string{"after-0", "after-1", "after-2"}, after.small)
			require.NoError(t, other.Join())
			t.Logf("%d whole messages of the killed sender arrived", after.big)
		})
	}
}

// TestSendersInParallelDoNotMix has two children send large messages on
// one pipe end at once: each message arrives whole, each sender's in order.
func TestSendersInParallelDoNotMix(t *testing.T) {
	const count, size = 20, 300 << 10 // five chunks each
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, r, w := sendersPipe(t, method)
			senders := []*mp.Process{ctx.Process(sendNumbered, w, 0, count, size), ctx.Process(sendNumbered, w, 1000, count, size)}
			for _, p := range senders {
				require.NoError(t, p.Start())
			}
			require.NoError(t, w.Close())
			next := map[int]int{0: 0, 1: 1000}
			for {
				msg, err := r.RecvBytes()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				seq, whole := checkNumbered(msg, size)
				require.True(t, whole, "message %d arrived whole", seq)
				require.Equal(t, next[seq/1000], seq, "sender %d's messages in order", seq/1000)
				next[seq/1000]++
			}
			assert.Equal(t, map[int]int{0: count, 1: 1000 + count}, next, "every message arrived")
			for _, p := range senders {
				require.NoError(t, p.Join())
			}
		})
	}
}

// echoPipe sends back every message it receives, until the end.
func echoPipe(c *mp.Connection) error {
	for {
		var s string
		err := c.Recv(&s)
		if err == io.EOF {
			return c.Close()
		}
		if err != nil {
			return err
		}
		if err := c.Send(s + "!"); err != nil {
			return err
		}
	}
}

// pipeWrongWay tries to receive on a sending end.
func pipeWrongWay(c *mp.Connection) error {
	var s string
	err := c.Recv(&s)
	return c.Send(err.Error())
}

func TestPipeWithChild(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			p, ours := startWithPipe(t, method, echoPipe)
			for _, s := range []string{"hello", "", "再见"} {
				require.NoError(t, ours.Send(s))
				ready, err := ours.Poll(20 * time.Second)
				require.NoError(t, err)
				require.True(t, ready)
				var got string
				require.NoError(t, ours.Recv(&got))
				assert.Equal(t, s+"!", got)
			}
			require.NoError(t, ours.Close())
			require.NoError(t, p.Join())
		})
	}
}

func TestPipeEnds(t *testing.T) {
	r, w, err := mp.Pipe(false)
	require.NoError(t, err)
	var s string
	assert.ErrorContains(t, r.Send("x"), "read-only")
	assert.ErrorIs(t, r.Send("x"), mp.ErrUnsupported)
	assert.ErrorContains(t, w.Recv(&s), "write-only")
	assert.ErrorIs(t, w.Recv(&s), mp.ErrUnsupported)
	_, err = w.Poll(0)
	assert.ErrorContains(t, err, "write-only")
	ready, err := r.Poll(0)
	require.NoError(t, err)
	assert.False(t, ready)
	assert.GreaterOrEqual(t, r.Fileno(), 0)

	require.NoError(t, w.SendBytes([]byte("raw")))
	assert.ErrorContains(t, r.Recv(&s), "use RecvBytes")
	require.NoError(t, w.Send(42))
	_, err = r.RecvBytes()
	assert.ErrorContains(t, err, "use Recv")
	require.NoError(t, w.Send(42))
	assert.Error(t, r.Recv(&s), "an int does not decode into a string")
	assert.Error(t, w.Send(make(chan int)), "gob cannot encode a channel")

	require.NoError(t, w.Close())
	require.NoError(t, w.Close())
	assert.Equal(t, -1, w.Fileno())
	ready, err = r.Poll(-1)
	require.NoError(t, err)
	assert.True(t, ready, "the end of the stream is ready")
	assert.Equal(t, io.EOF, r.Recv(&s))
	require.NoError(t, r.Close())
	assert.ErrorIs(t, r.Recv(&s), mp.ErrClosed)
	assert.ErrorIs(t, w.Send(1), mp.ErrClosed)

	// The wrong end in a child fails there too.
	r, w, err = mp.Pipe(false)
	require.NoError(t, err)
	defer r.Close()
	p := mp.NewProcess(pipeWrongWay, w)
	require.NoError(t, p.Start())
	require.NoError(t, w.Close())
	require.NoError(t, r.Recv(&s))
	assert.Contains(t, s, "write-only")
	require.NoError(t, p.Join())
}

func init() {
	mp.Register(echoPipe)
	mp.Register(pipeWrongWay)
}
