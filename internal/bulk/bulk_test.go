//go:build linux

package bulk

import (
	"bytes"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/shm"
)

// inode names a file, whichever descriptor it is open on.
func inode(t *testing.T, f *os.File) uint64 {
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(ownfd.FD(f), &st))
	return st.Ino
}

// send stands for the message that carries f: a descriptor of its own,
// as the receiver gets it.
func send(t *testing.T, f *os.File) int {
	fd, err := unix.Dup(ownfd.FD(f))
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestAFileIsUsedAgainOnceRead(t *testing.T) {
	var w Writer
	defer w.Close()
	f, done, err := w.Write([]byte("first "), []byte("message"))
	require.NoError(t, err)
	first := inode(t, f)
	fd := send(t, f)
	done(true)

	g, done, err := w.Write([]byte("second"))
	require.NoError(t, err)
	assert.NotEqual(t, first, inode(t, g), "the first is unread: another file")
	gfd := send(t, g)
	done(true)

	msg, err := Read(fd, int64(len("first message")), nil)
	require.NoError(t, err)
	assert.Equal(t, "first message", string(msg))

	h, done, err := w.Write(bytes.Repeat([]byte{7}, 3*Offset))
	require.NoError(t, err)
	assert.Equal(t, first, inode(t, h), "read, the first file is used again")
	hfd := send(t, h)
	done(true)
	msg, err = Read(hfd, 3*Offset, nil)
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{7}, 3*Offset), msg)
	msg, err = Read(gfd, int64(len("second")), nil)
	require.NoError(t, err)
	assert.Equal(t, "second", string(msg))
}

// A file not sent is free at once; with every kept file unread, a Write
// makes one it does not keep.
func TestUnsentAndUnreadFiles(t *testing.T) {
	var w Writer
	defer w.Close()
	f, done, err := w.Write([]byte("x"))
	require.NoError(t, err)
	unsent := inode(t, f)
	done(false)
	f, done, err = w.Write([]byte("y"))
	require.NoError(t, err)
	assert.Equal(t, unsent, inode(t, f))
	done(false)

	for range maxFiles {
		f, done, err := w.Write([]byte("unread"))
		require.NoError(t, err)
		send(t, f)
		done(true)
	}
	f, done, err = w.Write([]byte("extra"))
	require.NoError(t, err)
	fd := send(t, f)
	done(true)
	assert.Equal(t, maxFiles, keptFiles(&w))
	_, err = unix.FcntlInt(uintptr(ownfd.FD(f)), unix.F_GETFD, 0)
	assert.Error(t, err, "a file not kept is closed by done")
	msg, err := Read(fd, 5, nil)
	require.NoError(t, err, "the message holds its own reference")
	assert.Equal(t, "extra", string(msg))
}

func TestReadRefusesAWrongSize(t *testing.T) {
	var w Writer
	defer w.Close()
	f, done, err := w.Write([]byte("12345"))
	require.NoError(t, err)
	fd := send(t, f)
	done(true)
	_, err = Read(fd, 6, nil)
	assert.ErrorContains(t, err, "a message of 6 bytes in a file of")
	_, err = Read(-1, 5, nil)
	assert.Error(t, err)
}

func TestCloseLetsGoOfTheFiles(t *testing.T) {
	var w Writer
	f, done, err := w.Write([]byte("x"))
	require.NoError(t, err)
	done(true)
	w.Close()
	assert.Zero(t, keptFiles(&w))
	_, err = unix.FcntlInt(uintptr(ownfd.FD(f)), unix.F_GETFD, 0)
	assert.Error(t, err)
}

// A reader keeps the files it read mapped, and reads what the writer put
// in them since, at the same size or another.
func TestReaderMapsFilesItReadsAgain(t *testing.T) {
	dropMaps()
	var w Writer
	defer w.Close()
	for i, msg := range []string{"one", "two", "three!"} {
		f, done, err := w.Write([]byte(msg))
		require.NoError(t, err)
		fd := send(t, f)
		done(true)
		got, err := Read(fd, int64(len(msg)), nil)
		require.NoError(t, err)
		assert.Equal(t, msg, string(got), "message %d", i)
	}
	assert.Equal(t, 1, readMaps(), "one file, written and read three times, is mapped once")
	dropMaps()
	assert.Zero(t, readMaps())
}

// keptFiles counts the files w keeps.
func keptFiles(w *Writer) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.files)
}

// readMaps counts the reader's mappings (the idle timer may be dropping
// them meanwhile).
func readMaps() int {
	reading.mu.Lock()
	defer reading.mu.Unlock()
	return len(reading.maps)
}

// StreamKept makes no file beyond those the Writer keeps.
func TestStreamKeptMakesNoMoreFiles(t *testing.T) {
	var w Writer
	defer w.Close()
	for range maxFiles {
		f, fill, err := w.StreamKept([]byte("unread"))
		require.NoError(t, err)
		send(t, f)
		fill(true)
	}
	_, _, err := w.StreamKept([]byte("one more"))
	assert.ErrorIs(t, err, ErrAllInUse)
}

// A file over maxMapped is read through a mapping made for that read, and
// used again once read, resized for the next message.
func TestLargeFileReadOnceAndUsedAgain(t *testing.T) {
	var w Writer
	defer w.Close()
	big := bytes.Repeat([]byte("0123456789abcdef"), (2*maxMapped)/16)
	f, done, err := w.Write(big)
	require.NoError(t, err)
	first := inode(t, f)
	fd := send(t, f)
	done(true)
	msg, err := Read(fd, int64(len(big)), nil)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, msg))

	smaller := big[:maxMapped+Offset+1]
	g, done, err := w.Write(smaller)
	require.NoError(t, err)
	assert.Equal(t, first, inode(t, g), "read, the file is used again")
	gfd := send(t, g)
	done(true)
	msg, err = Read(gfd, int64(len(smaller)), nil)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(smaller, msg))
}

// A mapping whose file shrinks while it is read (a peer that breaks the
// protocol) is an error, not a crash.
func TestCopyOfAShrunkFileIsAnError(t *testing.T) {
	f, err := ownfd.Memfd("shrinks")
	require.NoError(t, err)
	defer ownfd.Close(f)
	size := 4 << 20
	require.NoError(t, f.Truncate(int64(size)))
	m, err := unix.Mmap(ownfd.FD(f), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(m)
	headerOf(m).filled.Store(pieces(size - Offset)) // all in
	require.NoError(t, f.Truncate(int64(size/2)))
	_, err = readMapped(m, nil, nil)
	assert.ErrorContains(t, err, "shrank")
}

// ReadInto copies a message into the caller's slices in turn, from a kept
// mapping and from one made for a file too large to keep, and marks the
// file read as Read does.
func TestReadIntoScattersTheMessage(t *testing.T) {
	for _, size := range []int{3 * Offset, maxMapped + 3*piece + 5} {
		var w Writer
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(i%251 + 1)
		}
		f, done, err := w.Write(want[:1], want[1:])
		require.NoError(t, err)
		first := inode(t, f)
		fd := send(t, f)
		done(true)

		head, rest := make([]byte, 1), make([]byte, size-1)
		require.NoError(t, ReadInto(fd, int64(size), nil, head, rest))
		assert.True(t, bytes.Equal(want, append(head, rest...)), "size %d", size)

		assert.ErrorContains(t, ReadInto(fd, int64(size), nil, rest), "bytes to read a message of")
		g, done, err := w.Write([]byte("again"))
		require.NoError(t, err)
		assert.Equal(t, first, inode(t, g), "read into, the file is used again")
		done(false)
		w.Close()
	}
}

// A file sent before its message is in it is read as the message lands:
// the reader waits, asleep on the header, for the pieces it has not got.
func TestAStreamedMessageIsReadAsItLands(t *testing.T) {
	for _, size := range []int{3*piece + 5, maxMapped + piece} {
		var w Writer
		want := bytes.Repeat([]byte("streamed"), size/8)
		f, fill, err := w.StreamKept(want[:1], want[1:])
		require.NoError(t, err)
		fd := send(t, f)
		h := headerOf(w.files[0].mem)
		assert.Zero(t, h.filled.Load(), "nothing is in before fill")

		got := make(chan []byte, 1)
		go func() {
			msg, err := Read(fd, int64(len(want)), nil)
			assert.NoError(t, err)
			got <- msg
		}()
		require.Eventually(t, func() bool { return h.filled.Load() == waiting },
			10*time.Second, time.Millisecond, "the reader sleeps on the header")
		fill(true)
		select {
		case msg := <-got:
			assert.True(t, bytes.Equal(want, msg), "size %d", size)
		case <-time.After(10 * time.Second):
			t.Fatal("the reader did not wake")
		}
		assert.Equal(t, uint64(read), h.mark.Load())
		w.Close()
	}
}

// A reader waiting for the pieces of a writer that is gone learns of it,
// and a reader told to stop stops.
func TestAWaitingReaderLearnsTheWriterDied(t *testing.T) {
	var w Writer
	defer w.Close()
	f, _, err := w.StreamKept(bytes.Repeat([]byte{1}, 2*piece))
	require.NoError(t, err)
	fd := send(t, f)
	h := headerOf(w.files[0].mem)

	done := exec.Command("true")
	require.NoError(t, done.Run())
	h.writer.Store(uint64(done.Process.Pid) << 32)
	start := time.Now()
	_, err = Read(fd, 2*piece, nil)
	assert.ErrorIs(t, err, ErrWriterDied)
	assert.Less(t, time.Since(start), 5*time.Second)

	h.writer.Store(shm.Self())
	var stop atomic.Bool
	go func() {
		require.Eventually(t, func() bool { return h.filled.Load() == waiting }, 10*time.Second, time.Millisecond)
		stop.Store(true)
	}()
	_, err = Read(fd, 2*piece, stop.Load)
	assert.ErrorIs(t, err, os.ErrClosed)
}
