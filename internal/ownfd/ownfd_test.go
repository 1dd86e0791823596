//go:build unix

package ownfd

import (
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/fdpass"
)

// others returns what Inherit would pass to a fork-method child.
func others(t *testing.T) []int {
	t.Helper()
	var got []int
	require.NoError(t, Inherit(func(fds []int) error {
		got = slices.Clone(fds)
		return nil
	}))
	return got
}

func TestInheritPassesTheUsersDescriptorsButNotTheLibrarys(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	a, b, err := Socketpair(unix.SOCK_STREAM, "test", true, false)
	require.NoError(t, err)
	dup, err := Dup(a)
	require.NoError(t, err)
	null, err := DevNull()
	require.NoError(t, err)

	got := others(t)
	assert.Contains(t, got, int(r.Fd()))
	assert.Contains(t, got, int(w.Fd()))
	for _, fd := range []int{FD(a), FD(b), dup, null} {
		assert.NotContains(t, got, fd, "one of the library's own")
	}

	fa, fb := FD(a), FD(b)
	require.NoError(t, Close(a))
	require.NoError(t, Close(b))
	CloseFDs([]int{dup})
	mu.Lock()
	for _, fd := range []int{fa, fb, dup} {
		assert.False(t, own[fd], "descriptor %d still listed once closed", fd)
	}
	mu.Unlock()
}

func TestSocketpairEndsWaitAsAsked(t *testing.T) {
	a, b, err := Socketpair(unix.SOCK_SEQPACKET, "test", true, false)
	require.NoError(t, err)
	defer Close(a)
	defer Close(b)
	for f, pollable := range map[*os.File]bool{a: true, b: false} {
		flags, err := unix.FcntlInt(uintptr(FD(f)), unix.F_GETFL, 0)
		require.NoError(t, err)
		assert.Equal(t, pollable, flags&unix.O_NONBLOCK != 0, "pollable end in non-blocking mode")
		fdflags, err := unix.FcntlInt(uintptr(FD(f)), unix.F_GETFD, 0)
		require.NoError(t, err)
		assert.NotZero(t, fdflags&unix.FD_CLOEXEC)
	}
}

func TestReceivedDescriptorsAreOwnUntilClosed(t *testing.T) {
	a, b, err := Socketpair(unix.SOCK_SEQPACKET, "test", true, true)
	require.NoError(t, err)
	defer Close(a)
	defer Close(b)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.NoError(t, fdpass.SendMsg(a, []byte{1}, int(r.Fd())))
	_, fds, err := Recv(b, make([]byte, 4))
	require.NoError(t, err)
	require.Len(t, fds, 1)
	assert.NotContains(t, others(t), fds[0], "received and not yet adopted")
	f := Adopt(fds[0], "received", true)
	assert.NotContains(t, others(t), fds[0], "adopted")
	require.NoError(t, Close(f))
	recvMu.Lock()
	assert.False(t, received[fds[0]])
	recvMu.Unlock()
}

func TestFDOfAClosedFileIsMinusOne(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	w.Close()
	assert.GreaterOrEqual(t, FD(r), 0)
	r.Close()
	assert.Equal(t, -1, FD(r))
}

func TestDupOfAClosedFileFails(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer w.Close()
	r.Close()
	_, err = Dup(r)
	assert.ErrorContains(t, err, "use of closed file", "not a duplicate of whatever has its number now")
}
