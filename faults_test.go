//go:build unix

package multiprocessing_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

// Faults: children killed in the middle of a message, many processes, and
// signals at awkward moments.

func init() {
	mp.Register(sendUntilKilled)
	mp.Register(sendInChunksUntilKilled)
	mp.Register(putUntilKilled)
	mp.Register(sendThree)
	mp.Register(putThree)
	mp.Register(sendNumbered)
}

// numbered is message seq of size bytes: the number, then its low byte
// over and over, so that a reader can tell a whole message from a mixed one.
func numbered(seq, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(seq))
	for i := 8; i < size; i++ {
		b[i] = byte(seq)
	}
	return b
}

// checkNumbered returns the number of a message made by numbered, and
// whether the message is whole.
func checkNumbered(b []byte, size int) (int, bool) {
	if len(b) != size {
		return -1, false
	}
	seq := int(binary.BigEndian.Uint64(b))
	for _, c := range b[8:] {
		if c != byte(seq) {
			return seq, false
		}
	}
	return seq, true
}

// bigMessage is larger than any socket buffer: a sender is in the middle
// of one until its reader takes most of it.
const bigMessage = 4 << 20

// arrivals sorts what arrives once a sender of numbered bigMessage-byte
// items (from 0, the first already taken) is killed: its whole ones, which
// must come in order, each once, and the small ones of others.
type arrivals struct {
	big   int // numbered items after the first
	small []string
}

func (a *arrivals) note(t *testing.T, b []byte) {
	t.Helper()
	if len(b) != bigMessage {
		a.small = append(a.small, string(b))
		return
	}
	seq, whole := checkNumbered(b, bigMessage)
	require.True(t, whole, "item %d is whole", seq)
	require.Equal(t, a.big+1, seq, "the killed sender's items arrive in order, each once")
	a.big++
}

func putUntilKilled(q *mp.Queue[[]byte], size int) error {
	for seq := 0; ; seq++ {
		if err := q.Put(numbered(seq, size)); err != nil {
			return err
		}
	}
}

func putThree(q *mp.Queue[[]byte]) error {
	for i := range 3 {
		if err := q.Put([]byte("after-" + strconv.Itoa(i))); err != nil {
			return err
		}
	}
	return nil
}

func TestKilledMidPutLeavesTheQueueUsable(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			q, err := mp.NewQueue[[]byte](0)
			require.NoError(t, err)
			defer q.Close()

			killed := ctx.Process(putUntilKilled, q, bigMessage)
			require.NoError(t, killed.Start())
			first, err := q.GetTimeout(20 * time.Second)
			require.NoError(t, err)
			seq, whole := checkNumbered(first, bigMessage)
			require.True(t, whole && seq == 0, "item %d whole: %v", seq, whole)
			// Writing four MiB takes the child most of its time: it is
			// almost surely in the middle of a Put now.
			require.NoError(t, killed.Kill())
			assert.Error(t, killed.Join())

			other := ctx.Process(putThree, q)
			require.NoError(t, other.Start())
			require.NoError(t, other.Join(), "a Put after the kill works")
			var after arrivals
			for {
				item, err := q.GetNowait()
				if errors.Is(err, mp.ErrEmpty) {
					break
				}
				require.NoError(t, err)
				after.note(t, item)
			}
			assert.Equal(t, []string{"after-0", "after-1", "after-2"}, after.small)
			assert.Zero(t, q.Qsize())
			t.Logf("%d whole items of the killed child arrived", after.big)
		})
	}
}

func TestSignalsWhileJoinWaits(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			r, w := reportPipe(t)
			p := ctx.Process(reportAndWait, w)
			require.NoError(t, p.Start())
			w.Close()
			require.Equal(t, p.Pid(), receive(t, r).Pid, "the child is running")

			joined := make(chan error, 1)
			go func() { joined <- p.Join() }()
			// Signals for this process: ignored ones, the runtime's own, and
			// SIGCHLD from other children that end meanwhile.
			for _, sig := range []syscall.Signal{syscall.SIGWINCH, syscall.SIGURG, syscall.SIGCHLD, syscall.SIGPROF} {
				for range 20 {
					require.NoError(t, syscall.Kill(os.Getpid(), sig))
				}
			}
			for range 3 {
				_, err := run(t, method, exitWith, 3)
				require.Error(t, err)
			}
			start := time.Now()
			assert.ErrorIs(t, p.JoinTimeout(200*time.Millisecond), mp.ErrTimeout)
			assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "signals do not cut a JoinTimeout short")
			assert.True(t, p.IsAlive())
			select {
			case err := <-joined:
				t.Fatalf("Join returned while the child ran: %v", err)
			default:
			}

			require.NoError(t, p.Terminate())
			select {
			case err := <-joined:
				var exit *mp.ExitError
				require.ErrorAs(t, err, &exit)
				assert.Equal(t, -int(syscall.SIGTERM), exit.Code)
			case <-time.After(20 * time.Second):
				t.Fatal("Join did not return after the child ended")
			}
		})
	}
}

func init() { mp.Register(reportAndWait) }

// reportAndWait reports its pid on w, then waits to be killed.
func reportAndWait(w *os.File) error {
	if err := send(w, description{Pid: os.Getpid()}); err != nil {
		return err
	}
	select {}
}

func TestSIGINTToTheProcessGroup(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperSetting("sigint-group"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()
	var line string
	_, err = fmt.Fscanln(stdout, &line)
	require.NoError(t, err)
	require.Equal(t, "ready", line)

	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	out, err := io.ReadAll(stdout)
	require.NoError(t, err)
	require.NoError(t, cmd.Wait(), string(out))
	// As in Python, where each process of the group gets a
	// KeyboardInterrupt: every child ends by it, the parent joins them.
	assert.Equal(t, "spawn -2\nfork -2\nforkserver -2\n", string(out))
	eventually(t, 2*time.Second, func() bool { return len(groupMembers(t, cmd.Process.Pid)) == 0 },
		"processes of the group outlived it")
}

func init() {
	// A parent in a process group of its own: it starts a child under each
	// method, says "ready", and on SIGINT joins them and prints their codes.
	registerHelper("sigint-group", func() int {
		interrupted := make(chan os.Signal, 1)
		signal.Notify(interrupted, os.Interrupt)
		var procs []*mp.Process
		for _, method := range methods {
			ctx, err := mp.GetContext(method)
			if err != nil {
				fmt.Println(err)
				return 1
			}
			r, w, err := os.Pipe()
			if err != nil {
				return 1
			}
			p := ctx.Process(reportAndWait, w)
			if err := p.Start(); err != nil {
				fmt.Println(err)
				return 1
			}
			w.Close()
			// The child runs once it has reported (under fork it holds a
			// copy of w: read one report, not to the end).
			var d description
			err = json.NewDecoder(r).Decode(&d)
			r.Close()
			if err != nil {
				fmt.Println(err)
				return 1
			}
			procs = append(procs, p)
		}
		fmt.Println("ready")
		<-interrupted
		for i, p := range procs {
			_ = p.Join()
			code, _ := p.ExitCode()
			fmt.Println(methods[i], code)
		}
		return 0
	})
}

// groupMembers lists the processes of process group pgid.
func groupMembers(t *testing.T, pgid int) []int {
	var found []int
	for pid, f := range processStats(t) {
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			found = append(found, pid)
		}
	}
	return found
}
