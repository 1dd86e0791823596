package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLaneMessages(t *testing.T) {
	item, size, err := ParseLane(append([]byte{LaneInline}, "item"...), 0)
	require.NoError(t, err)
	assert.Equal(t, "item", string(item))
	assert.Zero(t, size)
	item, size, err = ParseLane(LaneFileHead(1<<26), 1)
	require.NoError(t, err)
	assert.Nil(t, item)
	assert.Equal(t, int64(1<<26), size)

	for name, bad := range map[string]struct {
		msg []byte
		fds int
	}{
		"empty":                       {nil, 0},
		"inline with a descriptor":    {[]byte{LaneInline, 1}, 1},
		"file without its descriptor": {LaneFileHead(10), 0},
		"file with a short size":      {[]byte{LaneFile, 0, 1}, 1},
		"file over the limit":         {LaneFileHead(MaxLaneFile + 1), 1},
		"unknown kind":                {[]byte{'?'}, 0},
	} {
		_, _, err := ParseLane(bad.msg, bad.fds)
		assert.Error(t, err, name)
	}
}

func FuzzLaneMessages(f *testing.F) {
	f.Add(append([]byte{LaneInline}, "item"...), 0)
	f.Add(LaneFileHead(100), 1)
	f.Add([]byte{}, 2)
	f.Fuzz(func(t *testing.T, msg []byte, fds int) {
		item, size, err := ParseLane(msg, fds)
		switch {
		case err != nil:
		case msg[0] == LaneInline && len(item) != len(msg)-1:
			t.Fatal("inline item length")
		case msg[0] == LaneFile && (size < 0 || size > MaxLaneFile || fds != 1):
			t.Fatalf("file item of %d bytes with %d descriptors", size, fds)
		}
	})
}
