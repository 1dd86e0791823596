//go:build unix

package fdpass

import (
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func seqpacketPair(t *testing.T) (a, b *os.File) {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	require.NoError(t, err)
	require.NoError(t, unix.SetNonblock(pair[0], true))
	require.NoError(t, unix.SetNonblock(pair[1], true))
	a, b = os.NewFile(uintptr(pair[0]), "a"), os.NewFile(uintptr(pair[1]), "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// sameFile reports whether two descriptors refer to one open file.
func sameFile(t *testing.T, x, y int) bool {
	t.Helper()
	var sx, sy unix.Stat_t
	require.NoError(t, unix.Fstat(x, &sx))
	require.NoError(t, unix.Fstat(y, &sy))
	return sx.Dev == sy.Dev && sx.Ino == sy.Ino
}

func TestDescriptorsArriveWithTheirDataCloseOnExec(t *testing.T) {
	a, b := seqpacketPair(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.NoError(t, SendMsg(a, []byte("hello"), int(r.Fd()), int(w.Fd())))

	var marked []int
	var mu sync.Mutex
	buf := make([]byte, 16)
	n, fds, err := RecvMsgHeld(b, buf, &mu, func(fds []int) { marked = append(marked, fds...) })
	require.NoError(t, err)
	defer closeAll(fds)
	assert.Equal(t, "hello", string(buf[:n]))
	require.Len(t, fds, 2)
	assert.Equal(t, fds, marked, "mark sees what arrived")
	assert.True(t, sameFile(t, fds[0], int(r.Fd())))
	assert.True(t, sameFile(t, fds[1], int(w.Fd())))
	for _, fd := range fds {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		require.NoError(t, err)
		assert.NotZero(t, flags&unix.FD_CLOEXEC, "descriptor %d is not close-on-exec", fd)
	}
}

func TestRecvRefusesWhatDoesNotFitAndClosesItsDescriptors(t *testing.T) {
	a, b := seqpacketPair(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, SendMsg(a, []byte("a message longer than the buffer"), int(w.Fd())))
	w.Close()
	_, fds, err := RecvMsg(b, make([]byte, 4))
	assert.Error(t, err)
	assert.Empty(t, fds)
	// The only writer left was the one that came with the message: once
	// it is closed, the pipe's reader sees the end.
	require.NoError(t, r.SetReadDeadline(deadline()))
	_, err = r.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the received descriptor was left open")
}

func TestSendRefusesEmptyMessagesAndTooManyDescriptors(t *testing.T) {
	a, _ := seqpacketPair(t)
	assert.ErrorContains(t, SendMsg(a, nil), "empty message")
	fds := make([]int, MaxFDs+1)
	assert.ErrorContains(t, SendMsg(a, []byte{1}, fds...), "descriptors in one message")
}

func TestTryRecvDoesNotWait(t *testing.T) {
	_, b := seqpacketPair(t)
	_, _, err := TryRecvMsgHeld(b, make([]byte, 8), nil, nil)
	assert.ErrorIs(t, err, unix.EAGAIN)
}

func TestRecvSeesTheEndOfTheStream(t *testing.T) {
	a, b := seqpacketPair(t)
	a.Close()
	_, _, err := RecvMsg(b, make([]byte, 8))
	assert.ErrorIs(t, err, io.EOF)
}

func deadline() time.Time { return time.Now().Add(10 * time.Second) }
