//go:build linux

package bulk

import (
	"bytes"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

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

	msg, err := Read(fd, int64(len("first message")), 0, nil)
	require.NoError(t, err)
	assert.Equal(t, "first message", string(msg))

	h, done, err := w.Write(bytes.Repeat([]byte{7}, 3*Offset))
	require.NoError(t, err)
	assert.Equal(t, first, inode(t, h), "read, the first file is used again")
	hfd := send(t, h)
	done(true)
	msg, err = Read(hfd, 3*Offset, 0, nil)
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{7}, 3*Offset), msg)
	msg, err = Read(gfd, int64(len("second")), 0, nil)
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
	msg, err := Read(fd, 5, 0, nil)
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
	_, err = Read(fd, 6, 0, nil)
	assert.ErrorContains(t, err, "a message of 6 bytes in a file of")
	_, err = Read(-1, 5, 0, nil)
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
		got, err := Read(fd, int64(len(msg)), 0, nil)
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
	msg, err := Read(fd, int64(len(big)), 0, nil)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, msg))

	smaller := big[:maxMapped+Offset+1]
	g, done, err := w.Write(smaller)
	require.NoError(t, err)
	assert.Equal(t, first, inode(t, g), "read, the file is used again")
	gfd := send(t, g)
	done(true)
	msg, err = Read(gfd, int64(len(smaller)), 0, nil)
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
	h := headerOf(m)
	h.filled().Store(pieces(size - Offset)) // all in
	h.verdict().Store(fillIt)
	require.NoError(t, f.Truncate(int64(size/2)))
	err = readMapped(m, [][]byte{make([]byte, size-Offset)}, nil)
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
		require.NoError(t, ReadInto(fd, int64(size), 0, nil, head, rest))
		assert.True(t, bytes.Equal(want, append(head, rest...)), "size %d", size)

		assert.ErrorContains(t, ReadInto(fd, int64(size), 0, nil, rest), "bytes to read a message of")
		g, done, err := w.Write([]byte("again"))
		require.NoError(t, err)
		assert.Equal(t, first, inode(t, g), "read into, the file is used again")
		done(false)
		w.Close()
	}
}

// fillOnly makes the test's Writers copy every message into its file,
// offering no direct copy, until the test ends.
func fillOnly(t *testing.T) {
	FillOnly = true
	t.Cleanup(func() { FillOnly = false })
}

// message is a test message of size bytes.
func message(size int) []byte { return bytes.Repeat([]byte("streamed"), size/8) }

// readAsync reads the message of size bytes in fd in a goroutine.
func readAsync(t *testing.T, fd, size int) <-chan []byte {
	got := make(chan []byte, 1)
	go func() {
		msg, err := Read(fd, int64(size), os.Getpid(), nil)
		assert.NoError(t, err)
		got <- msg
	}()
	return got
}

func receive(t *testing.T, got <-chan []byte) []byte {
	t.Helper()
	select {
	case msg := <-got:
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not end")
		return nil
	}
}

// streamed readies a message of size bytes in two parts with StreamKept
// and sends its file: it returns the message, fill, the descriptor the
// reader gets and the file's header.
func streamed(t *testing.T, w *Writer, size int) ([]byte, func(bool), int, header) {
	t.Helper()
	want := message(size)
	f, fill, err := w.StreamKept(want[:1], want[1:])
	require.NoError(t, err)
	return want, fill, send(t, f), headerOf(w.files[0].mem)
}

// A file sent before its message is in it is read as the message lands:
// the reader waits, asleep on the header, for the pieces it has not got.
func TestAStreamedMessageIsReadAsItLands(t *testing.T) {
	fillOnly(t)
	for _, size := range []int{3*piece + 5, maxMapped + piece} {
		var w Writer
		want, fill, fd, h := streamed(t, &w, size)
		assert.Zero(t, h.filled().Load(), "nothing is in before fill")

		got := readAsync(t, fd, len(want))
		require.Eventually(t, func() bool { return h.filled().Load() == waiting },
			10*time.Second, time.Millisecond, "the reader sleeps on the header")
		fill(true)
		assert.True(t, bytes.Equal(want, receive(t, got)), "size %d", size)
		assert.Equal(t, uint64(read), h.mark().Load())
		w.Close()
	}
}

// A reader that comes while the writer waits copies the message straight
// from the writer's memory, and the writer copies nothing in.
func TestADirectCopyTakesTheMessageFromTheWritersMemory(t *testing.T) {
	for _, size := range []int{3*piece + 5, maxMapped + piece} {
		var w Writer
		want, fill, fd, h := streamed(t, &w, size)
		got := readAsync(t, fd, len(want))
		assert.True(t, bytes.Equal(want, receive(t, got)), "size %d", size)
		assert.Equal(t, uint32(copied), h.verdict().Load())
		fill(true) // returns at once: copied
		assert.Zero(t, h.filled().Load(), "the writer copied nothing in")
		assert.Equal(t, uint64(read), h.mark().Load())
		w.Close()
	}
}

// A reader that may not read the writer's memory, or finds it unreadable,
// has the writer copy the message into the file, and reads it there.
func TestARefusedDirectCopyFallsBackToTheFile(t *testing.T) {
	for _, how := range []string{"refused", "fault"} {
		t.Run(how, func(t *testing.T) {
			if how == "refused" {
				refuse(shm.Self())
				defer func() {
					refusals.Lock()
					refusals.owners = nil
					refusals.Unlock()
				}()
			}
			var w Writer
			defer w.Close()
			want, fill, fd, h := streamed(t, &w, 3*piece+5)
			if how == "fault" {
				*(*remotePart)(unsafe.Pointer(&h[partsOff])) = remotePart{8, 1} // no such address
			}
			got := readAsync(t, fd, len(want))
			require.Eventually(t, func() bool { return h.verdict().Load() == fillIt },
				10*time.Second, time.Millisecond, "the reader asks for the file")
			fill(true)
			assert.True(t, bytes.Equal(want, receive(t, got)))
			assert.Equal(t, pieces(len(want)), h.filled().Load())
			assert.Equal(t, how == "refused", refused(shm.Self()), "only a refusal is remembered")
		})
	}
}

// A writer whose reader does not come within verdictWait copies the
// message into the file, and offers no direct copy for a while; one whose
// reader claimed the message and died goes on.
func TestAWriterDoesNotWaitForAReaderForEver(t *testing.T) {
	var w Writer
	defer w.Close()
	want := message(3*piece + 5)
	f, fill, err := w.StreamKept(want)
	require.NoError(t, err)
	fd := send(t, f)
	h := headerOf(w.files[0].mem)
	fill(true)
	assert.Equal(t, uint32(fillIt), h.verdict().Load())
	assert.Equal(t, pieces(len(want)), h.filled().Load())
	assert.Equal(t, skipAfterMiss, w.skip)
	assert.True(t, bytes.Equal(want, receive(t, readAsync(t, fd, len(want)))))

	w.skip = 0
	f, fill, err = w.StreamKept(want)
	require.NoError(t, err)
	send(t, f)
	h = headerOf(w.files[0].mem)
	done := exec.Command("true")
	require.NoError(t, done.Run())
	h.reader().Store(uint64(done.Process.Pid) << 32)
	require.True(t, h.verdict().CompareAndSwap(undecided, direct), "a reader claims it")
	start := time.Now()
	fill(true)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Zero(t, h.filled().Load(), "taken, if by a reader now dead: not copied in")
}

// A reader of a writer that is gone learns of it, whether it copies from
// the writer's memory or waits for pieces; and a reader told to stop
// stops.
func TestAReaderLearnsTheWriterDied(t *testing.T) {
	for _, fill := range []bool{false, true} {
		FillOnly = fill
		var w Writer
		f, _, err := w.StreamKept(bytes.Repeat([]byte{1}, 2*piece))
		require.NoError(t, err)
		fd := send(t, f)
		h := headerOf(w.files[0].mem)
		done := exec.Command("true")
		require.NoError(t, done.Run())
		h.writer().Store(uint64(done.Process.Pid) << 32)
		start := time.Now()
		_, err = Read(fd, 2*piece, done.Process.Pid, nil)
		assert.ErrorIs(t, err, ErrWriterDied, "fill only: %v", fill)
		assert.Less(t, time.Since(start), 5*time.Second)
		w.Close()
	}
	FillOnly = false

	fillOnly(t)
	var w Writer
	defer w.Close()
	f, _, err := w.StreamKept(bytes.Repeat([]byte{1}, 2*piece))
	require.NoError(t, err)
	fd := send(t, f)
	h := headerOf(w.files[0].mem)
	var stop atomic.Bool
	go func() {
		require.Eventually(t, func() bool { return h.filled().Load() == waiting }, 10*time.Second, time.Millisecond)
		stop.Store(true)
	}()
	_, err = Read(fd, 2*piece, os.Getpid(), stop.Load)
	assert.ErrorIs(t, err, os.ErrClosed)
}

// Only the kernel's word on who sent the file counts: a file that names
// another writer than the sender, or a sender the kernel did not name, is
// filled, never copied from anyone's memory.
func TestADirectCopyReadsOnlyTheSendersMemory(t *testing.T) {
	for _, how := range []string{"other writer", "unknown sender"} {
		t.Run(how, func(t *testing.T) {
			var w Writer
			defer w.Close()
			want, fill, fd, h := streamed(t, &w, 3*piece+5)
			from := os.Getpid()
			if how == "other writer" {
				h.writer().Store(uint64(os.Getppid())<<32 | uint64(uint32(shm.Self()))) // a whole owner word
			} else {
				from = 0
			}
			got := make(chan []byte, 1)
			go func() {
				msg, err := Read(fd, int64(len(want)), from, nil)
				assert.NoError(t, err)
				got <- msg
			}()
			require.Eventually(t, func() bool { return h.verdict().Load() == fillIt },
				10*time.Second, time.Millisecond, "the reader asks for the file")
			h.writer().Store(uint64(os.Getpid()) << 32)
			fill(true)
			assert.True(t, bytes.Equal(want, receive(t, got)))
			assert.Equal(t, pieces(len(want)), h.filled().Load())
		})
	}
}

// A writer whose reader claimed the message and then neither copies nor
// dies (stopped, say) takes it back after claimWait and fills the file,
// which a reader then reads.
func TestAWriterTakesBackAMessageItsReaderSitsOn(t *testing.T) {
	var w Writer
	defer w.Close()
	want, fill, fd, h := streamed(t, &w, 3*piece+5)
	h.reader().Store(shm.Self())
	require.True(t, h.verdict().CompareAndSwap(undecided, direct))
	start := time.Now()
	fill(true)
	assert.GreaterOrEqual(t, time.Since(start), claimWait(len(want)))
	assert.Equal(t, uint32(fillIt), h.verdict().Load())
	assert.Equal(t, pieces(len(want)), h.filled().Load())
	msg, err := Read(fd, int64(len(want)), os.Getpid(), nil)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, msg))
}
