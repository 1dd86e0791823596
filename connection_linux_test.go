// Tests of Pipe and Connection that need Linux's memory files: senders of
// large messages stopped or killed while they copy one in.

package multiprocessing_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

// sendStalledUntilKilled sends one large message that stops after its
// first piece, and waits to be killed.
func sendStalledUntilKilled(c *mp.Connection, size int) error {
	mp.StallLargeSends()
	return sendUntilKilled(c, size)
}

// A sender killed while it fills a large message's memory file leaves the
// pipe usable: the reader, waiting for the rest, learns that the sender is
// gone, takes the next messages, and reports the cut one at the end.
func TestKilledMidFillLeavesThePipeUsable(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, r, w := sendersPipe(t, method)
			killed := ctx.Process(sendStalledUntilKilled, w, bigMessage)
			require.NoError(t, killed.Start())
			ready, err := r.Poll(20 * time.Second)
			require.NoError(t, err)
			require.True(t, ready, "the file has come; its message stops after a piece")
			type arrival struct {
				b   []byte
				err error
			}
			arrived := make(chan arrival, 10)
			go func() {
				for {
					b, err := r.RecvBytes()
					arrived <- arrival{b, err}
					if err != nil {
						return
					}
				}
			}()
			require.NoError(t, killed.Kill())
			assert.Error(t, killed.Join())

			other := ctx.Process(sendThree, w)
			require.NoError(t, other.Start())
			require.NoError(t, w.Close())
			var got []string
			for range 4 {
				select {
				case a := <-arrived:
					if a.err != nil {
						assert.ErrorContains(t, a.err, "1 message(s) cut short: the sender died while sending")
						continue
					}
					got = append(got, string(a.b))
				case <-time.After(20 * time.Second):
					t.Fatalf("the reader is stuck after %q", got)
				}
			}
			assert.Equal(t, []string{"after-0", "after-1", "after-2"}, got, "the other sender's messages arrive, and nothing of the cut one")
			require.NoError(t, other.Join())
		})
	}
}

// Close ends a RecvBytes that waits for the rest of a message whose sender
// has stopped (alive, as under SIGSTOP).
func TestCloseEndsARecvWaitingForAStalledSender(t *testing.T) {
	ctx, r, w := sendersPipe(t, quickMethod)
	stalled := ctx.Process(sendStalledUntilKilled, w, bigMessage)
	require.NoError(t, stalled.Start())
	defer stalled.Join()
	defer stalled.Kill()
	ready, err := r.Poll(20 * time.Second)
	require.NoError(t, err)
	require.True(t, ready)
	ended := make(chan error, 1)
	go func() {
		_, err := r.RecvBytes()
		ended <- err
	}()
	require.Eventually(t, func() bool { return strings.Contains(allStacks(), "bulk.header.await") },
		20*time.Second, time.Millisecond, "RecvBytes waits for the message's pieces")
	require.NoError(t, r.Close())
	select {
	case err := <-ended:
		assert.ErrorIs(t, err, mp.ErrClosed)
	case <-time.After(20 * time.Second):
		t.Fatal("RecvBytes still waits after Close")
	}
}

// allStacks is the stacks of all of this process's goroutines.
func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func init() {
	mp.Register(sendStalledUntilKilled)
}
