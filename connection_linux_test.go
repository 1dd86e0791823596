// Tests of Pipe and Connection that need Linux's memory files: senders of
// large messages stopped or killed while they copy one in, and receivers
// that copy one straight from their sender's memory.

package multiprocessing_test

import (
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
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

// directCopiesRefused skips a test that needs this process to read its
// children's memory where Yama allows no such thing.
func directCopiesRefused(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	if scope, _ := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && scope >= 2 {
		t.Skip("Yama's ptrace_scope refuses reading another process's memory")
	}
}

// serveNumbered answers each number it receives with that numbered large
// message, until the end.
func serveNumbered(c *mp.Connection) error {
	for {
		var seq int
		if err := c.Recv(&seq); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := c.SendBytes(numbered(seq, bigMessage)); err != nil {
			return err
		}
	}
}

// A parent that waits for a child's large messages copies them straight
// from the child's memory (its own descendant's, which Yama's scope 1
// allows too), each whole.
func TestLargeMessagesComeStraightFromTheSendersMemory(t *testing.T) {
	directCopiesRefused(t)
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			p, ours := startWithPipe(t, method, serveNumbered)
			before := mp.DirectCopies()
			for seq := range 20 {
				require.NoError(t, ours.Send(seq))
				b, err := ours.RecvBytes()
				require.NoError(t, err)
				got, whole := checkNumbered(b, bigMessage)
				require.True(t, whole && got == seq, "message %d: %d, whole %v", seq, got, whole)
			}
			require.NoError(t, ours.Close())
			require.NoError(t, p.Join())
			direct := mp.DirectCopies() - before
			assert.Positive(t, direct, "no message came straight from the sender")
			t.Logf("%d of 20 came straight from the sender's memory", direct)
		})
	}
}

// claimReport is what receiveStalledAfterClaim says of each message.
type claimReport struct{ Claimed, Whole bool }

// receiveStalledAfterClaim receives numbered large messages, stopping for
// 1.5 s whenever it has claimed one to copy from the sender's memory, and
// reports on each.
func receiveStalledAfterClaim(c *mp.Connection) error {
	var claimed atomic.Bool
	mp.StallDirectCopies(1500*time.Millisecond, &claimed)
	for seq := 0; ; seq++ {
		b, err := c.RecvBytes()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		got, whole := checkNumbered(b, bigMessage)
		if err := c.Send(claimReport{claimed.Swap(false), whole && got == seq}); err != nil {
			return err
		}
	}
}

// A receiver that claims a message and then stops holds its sender for
// about a second, no more: the sender takes the message back into the
// file, and the receiver, going on, reads it there whole.
func TestASenderTakesBackWhatAStoppedReceiverClaimed(t *testing.T) {
	p, ours := startWithPipe(t, quickMethod, receiveStalledAfterClaim)
	// A first offer the child is not yet waiting for makes the parent
	// offer none for the next eight: twenty tries.
	for seq := range 20 {
		start := time.Now()
		require.NoError(t, ours.SendBytes(numbered(seq, bigMessage)))
		took := time.Since(start)
		var report claimReport
		require.NoError(t, ours.Recv(&report))
		assert.True(t, report.Whole, "message %d arrived whole", seq)
		if report.Claimed {
			assert.GreaterOrEqual(t, took, time.Second, "the sender waited for its claimed message")
			assert.Less(t, took, 1400*time.Millisecond, "and took it back before the receiver went on")
			require.NoError(t, ours.Close())
			require.NoError(t, p.Join())
			return
		}
	}
	t.Skip("the child never claimed a message: the system refuses it our memory")
}

func init() {
	mp.Register(sendStalledUntilKilled)
	mp.Register(receiveStalledAfterClaim)
	mp.Register(serveNumbered)
}
