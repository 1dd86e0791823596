package wire

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunksOf returns the chunks of a message as the bytes a reader gets.
func chunksOf(t testing.TB, writer uint64, parts ...[]byte) [][]byte {
	seq, err := Chunks(writer, parts...)
	require.NoError(t, err)
	var out [][]byte
	for bufs := range seq {
		out = append(out, bytes.Join(bufs, nil))
	}
	return out
}

func TestChunksRoundTrip(t *testing.T) {
	payload := MaxChunk - ChunkHeader
	for _, size := range []int{0, 1, payload, payload + 1, 3*payload + 7} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		// Two parts, split where a chunk does not end.
		cut := size / 3
		chunks := chunksOf(t, 7, []byte{'b'}, msg[:cut], msg[cut:])
		assert.Len(t, chunks, (size+1+payload-1)/payload)
		var a Assembler
		for i, c := range chunks {
			assert.LessOrEqual(t, len(c), MaxChunk)
			got, err := a.Add(c)
			require.NoError(t, err)
			if i < len(chunks)-1 {
				require.Nil(t, got, "chunk %d of %d completes nothing", i, len(chunks))
				continue
			}
			assert.Equal(t, append([]byte{'b'}, msg...), got)
		}
		assert.Zero(t, a.CutShort())
	}
}

func TestChunksOfTwoWritersDoNotMix(t *testing.T) {
	one := chunksOf(t, 1, bytes.Repeat([]byte{1}, 2*MaxChunk))
	two := chunksOf(t, 2, bytes.Repeat([]byte{2}, 2*MaxChunk))
	require.Len(t, one, 3)
	var a Assembler
	var got [][]byte
	for i := range one {
		for _, c := range [][]byte{one[i], two[i]} {
			msg, err := a.Add(c)
			require.NoError(t, err)
			if msg != nil {
				got = append(got, msg)
			}
		}
	}
	require.Len(t, got, 2)
	assert.Equal(t, bytes.Repeat([]byte{1}, 2*MaxChunk), got[0])
	assert.Equal(t, bytes.Repeat([]byte{2}, 2*MaxChunk), got[1])
}

func TestChunksOfAWriterCutShort(t *testing.T) {
	cut := chunksOf(t, 1, bytes.Repeat([]byte{1}, 3*MaxChunk))
	whole := chunksOf(t, 2, []byte("after"))
	var a Assembler
	for _, c := range cut[:2] {
		msg, err := a.Add(c)
		require.NoError(t, err)
		require.Nil(t, msg)
	}
	msg, err := a.Add(whole[0])
	require.NoError(t, err)
	assert.Equal(t, []byte("after"), msg, "another writer's message arrives")
	assert.Equal(t, 1, a.CutShort())
	assert.Zero(t, a.CutShort(), "counted once")
}

func TestChunksMidMessage(t *testing.T) {
	chunks := chunksOf(t, 1, bytes.Repeat([]byte{1}, 3*MaxChunk))
	var a Assembler
	_, err := a.Add(chunks[1])
	assert.ErrorIs(t, err, ErrMidMessage, "another reader took the start")
	msg, err := a.Add(chunks[2])
	assert.NoError(t, err, "reported once per message")
	assert.Nil(t, msg)
	for _, c := range chunks {
		msg, err = a.Add(c)
		require.NoError(t, err)
	}
	assert.Len(t, msg, 3*MaxChunk, "the next message arrives whole")
}

func TestChunkErrors(t *testing.T) {
	good := chunksOf(t, 1, []byte("hello"))[0]
	var a Assembler
	_, err := a.Add(good[:ChunkHeader-1])
	assert.ErrorContains(t, err, "chunk header of 16 bytes")
	_, err = a.Add(good[:len(good)-1])
	assert.ErrorContains(t, err, "says it carries 5")
	bad := bytes.Clone(good)
	bad[0] = 0x80
	_, err = a.Add(bad)
	assert.ErrorContains(t, err, "unknown flags")
	bad = bytes.Clone(good)
	bad[9] = 0xff // size
	_, err = a.Add(bad)
	assert.ErrorIs(t, err, ErrFrameTooLarge)
	bad = bytes.Clone(good)
	bad[12] = 2 // size 2, payload 5
	_, err = a.Add(bad)
	assert.ErrorContains(t, err, "for a message of 2")
	bad = bytes.Clone(good)
	bad[12] = 9 // size 9, payload 5, last
	_, err = a.Add(bad)
	assert.ErrorContains(t, err, "message of 9 bytes ended after 5")
	msg, err := a.Add(good)
	require.NoError(t, err, "still usable")
	assert.Equal(t, []byte("hello"), msg)
}

// FuzzAssembler feeds chunks as another process might write them: whatever
// they hold, the assembler returns errors, never a message larger than its
// input, and never panics.
func FuzzAssembler(f *testing.F) {
	for _, c := range chunksOf(f, 3, bytes.Repeat([]byte("x"), MaxChunk+5)) {
		f.Add(c, c)
	}
	one := chunksOf(f, 1, []byte("hello"))[0]
	f.Add(one, one)
	f.Add([]byte{}, []byte{ChunkFirst})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var asm Assembler
		in := 0
		for _, c := range [][]byte{a, b, a} {
			in += len(c)
			msg, err := asm.Add(c)
			if err == nil && len(msg) > in {
				t.Fatalf("a message of %d bytes from %d bytes of input", len(msg), in)
			}
		}
		asm.CutShort()
	})
}

// A file chunk gives the size of its message, ends a message its writer
// had begun, and is refused by Add and when malformed.
func TestFileChunks(t *testing.T) {
	var a Assembler
	chunks := chunksOf(t, 9, bytes.Repeat([]byte{1}, 2*MaxChunk))
	_, err := a.Add(chunks[0])
	require.NoError(t, err)
	file := FileChunk(9, 1<<20)
	require.True(t, IsFileChunk(file))
	assert.False(t, IsFileChunk(chunks[0]))
	size, err := a.AddFile(file, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1<<20), size)
	assert.Equal(t, 1, a.CutShort(), "the message begun before is cut short")

	_, err = a.Add(file)
	assert.Error(t, err, "Add does not take a file chunk")
	_, err = a.AddFile(file, 0)
	assert.ErrorContains(t, err, "0 descriptors")
	_, err = a.AddFile(append(bytes.Clone(file), 'x'), 1)
	assert.Error(t, err, "a file chunk carries no payload")
	bad := bytes.Clone(file)
	bad[0] = ChunkFile
	_, err = a.AddFile(bad, 1)
	assert.Error(t, err, "a file chunk is a whole message")
	_, err = a.AddFile(FileChunk(9, MaxFrame+1), 1)
	assert.ErrorIs(t, err, ErrFrameTooLarge)
}
