// Tests of Pipe and Connection that hold on every system: receiving into
// a buffer of one's own.

package multiprocessing_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

// startWithPipe starts target under method with one end of a duplex pipe,
// and returns the child and the other end, closed when the test ends.
func startWithPipe(t *testing.T, method mp.StartMethod, target any) (*mp.Process, *mp.Connection) {
	t.Helper()
	ours, theirs, err := mp.Pipe(true)
	require.NoError(t, err)
	t.Cleanup(func() { ours.Close() })
	ctx, err := mp.GetContext(method)
	require.NoError(t, err)
	p := ctx.Process(target, theirs)
	require.NoError(t, p.Start())
	require.NoError(t, theirs.Close(), "the child has its own copy")
	return p, ours
}

// intoSizes are the messages sendForInto sends: empty, small, a chunk and
// a half, large (a memory file on Linux), and larger than intoBuffer.
var intoSizes = []int{0, 5, 100 << 10, 300 << 10, 3 << 20}

const intoBuffer = 1 << 20

// sendForInto sends the intoSizes, then a gob message, then one more.
func sendForInto(c *mp.Connection) error {
	for _, size := range intoSizes {
		if err := c.SendBytes(pattern(size)); err != nil {
			return err
		}
	}
	if err := c.Send(7); err != nil {
		return err
	}
	if err := c.SendBytes([]byte("last")); err != nil {
		return err
	}
	return c.Close()
}

func TestRecvBytesInto(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			p, ours := startWithPipe(t, method, sendForInto)
			buf := make([]byte, intoBuffer)
			for _, size := range intoSizes {
				untouched := bytes.Repeat([]byte{0xEE}, len(buf))
				copy(buf, untouched)
				n, err := ours.RecvBytesInto(buf)
				want := pattern(size)
				if size > len(buf) {
					var short *mp.BufferTooShortError
					require.True(t, errors.As(err, &short), "a message of %d bytes: %v", size, err)
					assert.Equal(t, "multiprocessing: a message of 3145728 bytes does not fit a buffer of 1048576", err.Error())
					assert.True(t, bytes.Equal(want, short.Message), "the message is in the error")
					assert.Equal(t, len(buf), short.Size)
					assert.True(t, bytes.Equal(untouched, buf), "buf is left as it was")
					continue
				}
				require.NoError(t, err, "a message of %d bytes", size)
				require.Equal(t, size, n)
				assert.True(t, bytes.Equal(want, buf[:n]), "a message of %d bytes", size)
				assert.True(t, bytes.Equal(untouched[n:], buf[n:]), "nothing past the message is written")
			}
			_, err := ours.RecvBytesInto(buf)
			assert.ErrorContains(t, err, "sent with Send; use Recv")
			n, err := ours.RecvBytesInto(buf[10:])
			require.NoError(t, err, "an offset is a slice")
			assert.Equal(t, "last", string(buf[10:10+n]))
			_, err = ours.RecvBytesInto(buf)
			assert.Equal(t, io.EOF, err)
			require.NoError(t, p.Join())
		})
	}
}

func TestRecvBytesIntoEnds(t *testing.T) {
	r, w, err := mp.Pipe(false)
	require.NoError(t, err)
	buf := make([]byte, 8)
	_, err = w.RecvBytesInto(buf)
	assert.ErrorIs(t, err, mp.ErrUnsupported)
	assert.ErrorContains(t, err, "write-only")

	require.NoError(t, w.SendBytes([]byte("12345678")))
	n, err := r.RecvBytesInto(buf)
	require.NoError(t, err, "a message as long as buf fits")
	assert.Equal(t, "12345678", string(buf[:n]))
	require.NoError(t, w.SendBytes([]byte("x")))
	_, err = r.RecvBytesInto(nil)
	var short *mp.BufferTooShortError
	require.True(t, errors.As(err, &short), "%v", err)
	assert.Equal(t, "x", string(short.Message))
	require.NoError(t, w.SendBytes(nil))
	n, err = r.RecvBytesInto(nil)
	require.NoError(t, err, "an empty message fits an empty buffer")
	assert.Zero(t, n)

	require.NoError(t, w.Close())
	require.NoError(t, r.Close())
	_, err = r.RecvBytesInto(buf)
	assert.ErrorIs(t, err, mp.ErrClosed)
}

func init() {
	mp.Register(sendForInto)
}
