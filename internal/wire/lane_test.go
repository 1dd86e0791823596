package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLaneMessages(t *testing.T) {
	items, size, err := ParseLane(append([]byte{LaneInline}, "item"...), 0)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("item")}, items)
	assert.Zero(t, size)
	batch := []byte{LaneBatch}
	for _, item := range []string{"one", "", "three"} {
		batch = AppendLaneBatch(batch, []byte(item))
	}
	items, _, err = ParseLane(batch, 0)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("one"), {}, []byte("three")}, items)
	items, size, err = ParseLane(LaneFileHead(1<<26), 1)
	require.NoError(t, err)
	assert.Nil(t, items)
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
		"batch of nothing":            {[]byte{LaneBatch}, 0},
		"batch with a descriptor":     {AppendLaneBatch([]byte{LaneBatch}, nil), 1},
		"batch cut in a length":       {[]byte{LaneBatch, 0, 0}, 0},
		"batch cut in an item":        {[]byte{LaneBatch, 0, 0, 0, 9, 'x'}, 0},
	} {
		_, _, err := ParseLane(bad.msg, bad.fds)
		assert.Error(t, err, name)
	}
}

func FuzzLaneMessages(f *testing.F) {
	f.Add(append([]byte{LaneInline}, "item"...), 0)
	f.Add(LaneFileHead(100), 1)
	f.Add([]byte{}, 2)
	f.Add(AppendLaneBatch(AppendLaneBatch([]byte{LaneBatch}, []byte("a")), nil), 0)
	f.Fuzz(func(t *testing.T, msg []byte, fds int) {
		items, size, err := ParseLane(msg, fds)
		room := 0
		for _, item := range items {
			room += LaneBatchRoom(item)
		}
		switch {
		case err != nil:
		case msg[0] == LaneInline && (len(items) != 1 || len(items[0]) != len(msg)-1):
			t.Fatal("inline item length")
		case msg[0] == LaneBatch && room != len(msg)-1:
			t.Fatalf("a batch of %d bytes parsed into items of %d", len(msg)-1, room)
		case msg[0] == LaneFile && (size < 0 || size > MaxLaneFile || fds != 1):
			t.Fatalf("file item of %d bytes with %d descriptors", size, fds)
		}
	})
}
