package fdpass

import (
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A socket that passes credentials learns each sender's pid from the
// kernel, with the descriptors intact and the end of the stream still
// seen; one that does not learns 0.
func TestRecvFromGivesTheSendersPid(t *testing.T) {
	a, b := seqpacketPair(t)
	buf := make([]byte, 16)
	require.NoError(t, SendMsg(a, []byte("plain")))
	n, _, pid, err := RecvMsgHeldFrom(b, buf, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "plain", string(buf[:n]))
	assert.Zero(t, pid, "no credentials asked for")

	require.NoError(t, PassCred(b))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.NoError(t, SendMsg(a, []byte("with"), int(w.Fd())))
	n, fds, pid, err := RecvMsgHeldFrom(b, buf, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "with", string(buf[:n]))
	assert.Equal(t, os.Getpid(), pid)
	require.Len(t, fds, 1, "the descriptor comes beside the credentials")
	closeAll(fds)

	require.NoError(t, SendMsg(a, []byte("bare")))
	n, fds, pid, err = RecvMsgHeldFrom(b, buf, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "bare", string(buf[:n]))
	assert.Empty(t, fds)
	assert.Zero(t, pid, "a message without descriptors is not asked for its sender")

	require.NoError(t, a.Close())
	_, _, _, err = RecvMsgHeldFrom(b, buf, nil, nil)
	assert.Equal(t, io.EOF, err)
}
