//go:build unix

// Package bulk carries large messages between processes in memory files
// that the writer uses again once their reader has read them. Writing a
// fresh memory file makes the kernel find and clear a page for each 4 KiB
// of it, which costs about three times the copy itself (a 64 MiB message:
// 27-39 ms against 8.6); into a file whose pages are there, the writer
// only copies. A queue's lane and a pipe send a large message as such a
// file riding on a small one.
//
// A file is a header page (see header), then the message, from byte
// Offset. The writer keeps the whole file mapped: it sees the reader's
// mark without a system call, and it copies a message in at memory speed,
// where a write(2) into the file goes a page at a time (1 MiB: 30-40 us
// against 130-170). A pipe sends the file before the message is in it:
// a reader that comes while the writer waits copies the message straight
// out of the writer's memory, one copy (direct.go); otherwise the writer
// copies it in and the reader copies each 64 KiB piece out as it lands,
// so that the two copies overlap rather than follow each other.
package bulk

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/shm"
)

// Offset is where the message begins in its file.
const Offset = 4096

const (
	maxFiles  = 4           // the most files a Writer keeps for later
	maxPooled = 256 << 20   // the largest message whose file it keeps
	idle      = time.Second // how long it keeps them without a Write
	read      = uint64(1)   // the header word of a file read
)

// A Writer writes messages into memory files, keeping some for later. Its
// zero value is ready; it is safe for concurrent use.
type Writer struct {
	mu    sync.Mutex
	files []*file
	timer *time.Timer
	skip  int // direct copies not to offer: a recent offer found no reader
}

// skipAfterMiss is how many messages a Writer sends without offering a
// direct copy once an offer found no reader in time, or one that could
// not take it: a writer whose reader is busy elsewhere does not wait
// verdictWait for each message.
const skipAfterMiss = 8

type file struct {
	f    *os.File
	mem  []byte // the file, mapped: its size
	busy bool   // being written or sent
	sent bool   // sent: free again once its reader has marked it read
}

func (fl *file) free() bool {
	return !fl.busy && (!fl.sent || headerOf(fl.mem).mark().Load() == read)
}

// A file's header page holds the words writer and reader share: the
// reader's mark, set once it has read the message; how many pieces of the
// message the writer has copied in, with the waiting bit of a reader
// asleep on the word; the writer's owner word (shm.Self), by which a
// reader that waits for pieces tells a writer that died from a slow one;
// and those of a direct copy (direct.go).
type header []byte

// Where the words are in the header.
const (
	markOff    = 0                            // uint64: read, once read
	filledOff  = 8                            // uint32: pieces in, and waiting
	writerOff  = 16                           // uint64: the writer's owner word
	verdictOff = 24                           // uint32: the direct copy's verdict
	readerOff  = 32                           // uint64: the owner word of the reader that claimed it
	npartsOff  = 40                           // uint32: how many pieces of the writer's memory follow
	partsOff   = 48                           // [maxDirectParts]{address, length uint64}
	offeredOff = partsOff + 16*maxDirectParts // int64: when, in ns of CLOCK_MONOTONIC
)

const waiting = 1 << 31 // in filled: a reader sleeps on it

func headerOf(mem []byte) header { return header(mem[:Offset]) }

func (h header) u32(off int) *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Pointer(&h[off])) }
func (h header) u64(off int) *atomic.Uint64 { return (*atomic.Uint64)(unsafe.Pointer(&h[off])) }

func (h header) mark() *atomic.Uint64    { return h.u64(markOff) }
func (h header) filled() *atomic.Uint32  { return h.u32(filledOff) }
func (h header) writer() *atomic.Uint64  { return h.u64(writerOff) }
func (h header) verdict() *atomic.Uint32 { return h.u32(verdictOff) }
func (h header) reader() *atomic.Uint64  { return h.u64(readerOff) }

// pieces is how many pieces a message of n bytes is copied in.
func pieces(n int) uint32 { return uint32((n + piece - 1) / piece) }

// Write copies the message made of parts into a memory file and returns
// the file, which the caller sends, and done, which it calls then: sent
// tells whether the file went (if not, it is free again at once). The
// caller must not use the file after done.
func (w *Writer) Write(parts ...[]byte) (f *os.File, done func(sent bool), err error) {
	return w.write(parts, false, false)
}

// ErrAllInUse is StreamKept's answer when every file it keeps is in use.
var ErrAllInUse = errors.New("bulk: every file is in use")

// StreamKept readies one of the files the Writer keeps for the message
// made of parts, and returns it before the message is in it: the caller
// sends it, then calls fill (sent tells whether the file went; if not,
// fill does nothing). fill waits for the reader's verdict (direct.go): a
// reader that copied the message straight from parts leaves nothing to do
// (1 MiB pipe trips 67-72 us against 107-119); otherwise, and when a
// reader that claimed the message takes too long, fill copies the message in
// piece by piece, and the reader copies each piece out as it lands, so the
// two copies overlap (64 MiB pipe trips into a buffer the reader keeps:
// 6.1-6.8 ms against 13.6-14.5 with the file filled before it went). The
// caller must not change parts before fill returns. When every kept file is
// on its way, unread, StreamKept returns ErrAllInUse rather than make
// another: what a writer has in flight is at most four messages, and the
// caller, which sends in some other way then, waits for its reader as
// before.
func (w *Writer) StreamKept(parts ...[]byte) (f *os.File, fill func(sent bool), err error) {
	return w.write(parts, true, true)
}

func (w *Writer) write(parts [][]byte, keptOnly, stream bool) (*os.File, func(sent bool), error) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	w.mu.Lock()
	fl := w.takeLocked(n)
	offer := stream && fl != nil && w.skip == 0 && !FillOnly
	if stream && fl != nil && w.skip > 0 {
		w.skip--
	}
	w.mu.Unlock()
	if fl == nil && keptOnly {
		return nil, nil, ErrAllInUse
	}
	if fl == nil {
		var err error
		if fl, err = newFile(); err != nil {
			return nil, nil, err
		}
		// Not kept: the pool is full of files still unread, or the
		// message is too large to keep memory for.
		fl.busy = true
	}
	if err := fl.prepare(n); err != nil {
		w.release(fl, false)
		return nil, nil, err
	}
	h := headerOf(fl.mem)
	h.offerDirect(parts, offer)
	if !stream {
		fl.fill(parts)
		return fl.f, func(sent bool) { w.release(fl, sent) }, nil
	}
	return fl.f, func(sent bool) {
		if sent && h.awaitVerdict(n) {
			if offer {
				w.mu.Lock()
				w.skip = skipAfterMiss
				w.mu.Unlock()
			}
			fl.fill(parts)
		}
		// A reader may have read parts from this process's memory until
		// the verdict came: they must live until then.
		runtime.KeepAlive(parts)
		w.release(fl, sent)
	}, nil
}

// takeLocked returns a free file of the pool for a message of n bytes,
// making one if there is room, or nil. The caller holds mu.
func (w *Writer) takeLocked(n int) *file {
	if n > maxPooled {
		return nil
	}
	var fl *file
	for _, f := range w.files {
		if f.free() {
			fl = f
			break
		}
	}
	if fl == nil && len(w.files) < maxFiles {
		var err error
		if fl, err = newFile(); err != nil {
			return nil
		}
		w.files = append(w.files, fl)
	}
	if fl != nil {
		fl.busy = true
	}
	return fl
}

// release ends a Write: a kept file waits for its reader, or is free; any
// other is closed (the message, if sent, holds its own reference).
func (w *Writer) release(fl *file, sent bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.files {
		if f == fl {
			fl.busy, fl.sent = false, sent
			w.armLocked()
			return
		}
	}
	fl.close()
}

// armLocked makes the pool let go of its files once no Write has come for
// idle: a file keeps its pages, as large as its last message. The caller
// holds mu.
func (w *Writer) armLocked() {
	if w.timer == nil {
		w.timer = time.AfterFunc(idle, w.drop)
		return
	}
	w.timer.Reset(idle)
}

// drop closes the files that no Write is using.
func (w *Writer) drop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := w.files[:0]
	for _, fl := range w.files {
		if fl.busy {
			kept = append(kept, fl)
		} else {
			fl.close()
		}
	}
	clear(w.files[len(kept):])
	w.files = kept
}

// Close closes the files that no Write is using.
func (w *Writer) Close() {
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.drop()
}

func newFile() (*file, error) {
	f, err := ownfd.Memfd("mpgo-bulk")
	if err != nil {
		return nil, err
	}
	fl := &file{f: f}
	if err := fl.resize(Offset); err != nil {
		ownfd.Close(f)
		return nil, err
	}
	return fl, nil
}

// resize makes the file size bytes long, and maps it all (shared, so that
// the reader's mark reaches the mapping).
func (fl *file) resize(size int) error {
	if fl.mem != nil {
		_ = unix.Munmap(fl.mem)
		fl.mem = nil
	}
	if err := fl.f.Truncate(int64(size)); err != nil {
		return err
	}
	mem, err := unix.Mmap(ownfd.FD(fl.f), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	fl.mem = mem
	return nil
}

// AfterPiece, if set, runs after each piece a fill copies in, and with
// FillOnly every streamed message is filled, none offered for a direct
// copy: tests stop a writer in the middle of a message so. Set them before
// any Write.
var (
	AfterPiece func()
	FillOnly   bool
	// AfterClaim, if set, runs in a reader that has claimed a message,
	// before it copies: tests stop a reader there.
	AfterClaim func()
)

// DirectCopies counts the messages this process has copied straight from
// their writers' memory.
var DirectCopies atomic.Int64

// prepare makes the file ready for a message of n bytes: unread, no piece
// in, written by this process.
func (fl *file) prepare(n int) error {
	if size := Offset + n; len(fl.mem) != size {
		if err := fl.resize(size); err != nil {
			return err
		}
	}
	h := headerOf(fl.mem)
	h.mark().Store(0)
	h.filled().Store(0)
	h.writer().Store(shm.Self())
	return nil
}

// fill copies in the message made of parts, a piece at a time, telling
// the reader after each how many are in, and waking it if it sleeps.
func (fl *file) fill(parts [][]byte) {
	filled := headerOf(fl.mem).filled()
	msg := fl.mem[Offset:]
	off := 0
	for _, p := range parts {
		for len(p) > 0 {
			n := copy(msg[off:min(len(msg), (off/piece+1)*piece)], p)
			off, p = off+n, p[n:]
			if off%piece == 0 || off == len(msg) {
				if filled.Swap(pieces(off))&waiting != 0 {
					shm.Wake(filled, 1)
				}
				if AfterPiece != nil {
					AfterPiece()
				}
			}
		}
	}
}

// piece is how much a writer and a reader copy at a time, and what a
// writer tells its reader it has copied in. One copy of a megabyte runs
// in a routine the scheduler cannot stop: a garbage collection that
// begins meanwhile signals the thread again and again until it ends (a
// fifth of a receiver's time here), where between pieces it stops it at
// once.
const piece = 64 << 10

func (fl *file) close() {
	if fl.mem != nil {
		_ = unix.Munmap(fl.mem)
	}
	ownfd.Close(fl.f)
}

// A reader keeps a few of the files it has read mapped, as their writer
// sends the same files again: a copy out of a mapping whose pages are
// there costs a third of a pread, which goes a page at a time. A mapping
// is used only while the file has the size it was mapped at, which its
// writer changes only once the reader has marked it read.
var reading struct {
	mu    sync.Mutex
	maps  []*readMap
	timer *time.Timer
}

type readMap struct {
	dev, ino uint64
	mem      []byte
	users    int // Reads copying out of mem
}

const (
	maxReadMaps = 4
	// maxMapped is the largest file a reader keeps mapped. Larger ones it
	// maps for one read, its pages populated at once: copying out of a
	// kept 64 MiB mapping took 15 to 89 ms here, the mapping's pages
	// being taken away and faulted in again between messages.
	maxMapped = 4 << 20
)

// Read returns the message of size bytes in the memory file fd, received
// with the message that announced it, and marks the file read, so that
// its writer may use it again. It does not close fd.
//
// A file sent before its message was in it (StreamKept) is read as the
// message lands: Read waits for each piece, and returns ErrWriterDied if
// the writer is gone before it has copied all in, or os.ErrClosed once
// stop (if not nil) says to give up; it asks both every 10 ms while it
// waits. When from, the pid of the process that sent the announcing
// message as the kernel said it (0: not known), is the writer the file
// names, Read first offers to copy the message straight from the
// writer's memory (see direct.go).
func Read(fd int, size int64, from int, stop func() bool) ([]byte, error) {
	return readTo(fd, size, nil, from, stop)
}

// ReadInto is Read into dst, whose slices take the message in turn and
// whose lengths add up to size, rather than into memory of its own: a
// reader that receives into the same buffer again and again has nothing
// to allocate, clear or collect.
func ReadInto(fd int, size int64, from int, stop func() bool, dst ...[]byte) error {
	n := 0
	for _, d := range dst {
		n += len(d)
	}
	if int64(n) != size {
		return fmt.Errorf("bulk: %d bytes to read a message of %d into", n, size)
	}
	if dst == nil {
		dst = [][]byte{} // not nil: into nothing
	}
	_, err := readTo(fd, size, dst, from, stop)
	return err
}

// ErrWriterDied is Read's error for a message whose writer died before it
// had copied all of it in.
var ErrWriterDied = errors.New("bulk: the message's writer died while writing it")

func readTo(fd int, size int64, dst [][]byte, from int, stop func() bool) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("bulk: %w", err)
	}
	if st.Size != Offset+size {
		return nil, fmt.Errorf("bulk: a message of %d bytes in a file of %d", size, st.Size)
	}
	// The header first, from a kept mapping or one of its own, so that
	// the message is claimed for a direct copy at once: mapping 64 MiB,
	// or making and clearing a new slice for it, takes longer than a
	// writer waits for its reader. A claimed writer waits for the copy.
	var h header
	m := mapped(fd, &st)
	if m != nil {
		defer doneReading(m)
		h = headerOf(m.mem)
	} else {
		page, err := unix.Mmap(fd, 0, Offset, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("bulk: mapping a message's file: %w", err)
		}
		defer unix.Munmap(page)
		h = headerOf(page)
	}
	var parts []remotePart
	if err := guarded(func() error { parts = h.claim(int(size), from); return nil }); err != nil {
		return nil, err
	}
	var msg []byte
	if dst == nil {
		msg = make([]byte, size)
		dst = [][]byte{msg}
	}
	if parts != nil {
		var done bool
		err := guarded(func() (err error) { done, err = h.copyClaimed(dst, from, parts); return err })
		if done || err != nil {
			return msg, err
		}
	}
	if m != nil {
		return msg, readMapped(m.mem, dst, stop)
	}
	// A file no kept mapping holds is mapped for this read alone, its
	// pages mapped at once (MAP_POPULATE where there is one), and copied
	// out in pieces as from a kept one: the kernel's pread goes a page at
	// a time (64 MiB pipe trips 18-21 ms against 22-27).
	if whole, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|mapPopulate); err == nil {
		defer unix.Munmap(whole)
		return msg, readMapped(whole, dst, stop)
	}
	// Where that mapping fails, pread, once the whole message is in.
	err := guarded(func() error {
		if err := h.await(pieces(int(size)), stop); err != nil {
			return err
		}
		off := int64(Offset)
		for _, d := range dst {
			if err := pread(fd, d, off); err != nil {
				return err
			}
			off += int64(len(d))
		}
		h.mark().Store(read)
		return nil
	})
	return msg, err
}

// readMapped copies the message out of mem, its file mapped whole, into
// dst, piece by piece as the writer copies them in. Then it marks the file
// read.
//
// Read's new slice is cleared before the pieces land (make), which costs
// little: it is done while the writer copies in. A slice not cleared, as
// bytes.Join makes one, would have to wait for the whole message (64 MiB
// pipe trips 10.6-11.2 ms against 13.9-17.0).
func readMapped(mem []byte, dst [][]byte, stop func() bool) error {
	return guarded(func() error {
		h, src := headerOf(mem), mem[Offset:]
		for off := 0; off < len(src); off += piece {
			if err := h.await(uint32(off/piece+1), stop); err != nil {
				return err
			}
			scatterAt(dst, off, src[off:min(off+piece, len(src))])
		}
		h.mark().Store(read)
		return nil
	})
}

// guarded runs f, which reads a file's mapping, and makes a memory fault
// in it (SIGBUS: a peer shrank the file) an error, not the end of the
// program.
func guarded(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if _, fault := r.(interface{ Addr() uintptr }); fault {
			err = fmt.Errorf("bulk: the message's file shrank while read: %v", r)
		} else if r != nil {
			panic(r)
		}
	}()
	return f()
}

// scatterAt copies src to where byte off of the slices of dst, taken in
// turn, is.
func scatterAt(dst [][]byte, off int, src []byte) {
	for _, d := range dst {
		if off >= len(d) {
			off -= len(d)
			continue
		}
		n := copy(d[off:], src)
		src, off = src[n:], 0
		if len(src) == 0 {
			return
		}
	}
}

// spin is how long a reader looks for a piece before it sleeps: a writer
// copies one in a few microseconds. With one processor the writer cannot
// copy while the reader looks, so it sleeps at once.
var spin = func() time.Duration {
	if runtime.NumCPU() == 1 {
		return 0
	}
	return 50 * time.Microsecond
}()

// asleep is how long a reader sleeps between asking whether the writer
// lives.
const asleep = 10 * time.Millisecond

// await waits until the writer has copied in the first k pieces.
func (h header) await(k uint32, stop func() bool) error {
	filled := h.filled()
	if filled.Load()&^waiting >= k {
		return nil
	}
	for start := time.Now(); ; {
		f := filled.Load()
		switch {
		case f&^waiting >= k:
			return nil
		case time.Since(start) < spin:
			continue
		case f&waiting == 0 && !filled.CompareAndSwap(f, f|waiting):
			continue
		}
		shm.Wait(filled, f|waiting, asleep)
		if filled.Load() != f|waiting {
			continue
		}
		// The writer may copy the last piece in and end between the
		// look above and this one: only what it had not copied counts.
		if w := h.writer().Load(); !shm.Alive(int(w>>32), w) && filled.Load()&^waiting < k {
			return ErrWriterDied
		}
		if stop != nil && stop() {
			h.mark().Store(read) // given up: the writer may use the file again
			return os.ErrClosed
		}
	}
}

// pread fills b from the file fd at off.
func pread(fd int, b []byte, off int64) error {
	for done := 0; done < len(b); {
		n, err := unix.Pread(fd, b[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return fmt.Errorf("bulk: reading a message's file: %v", err)
		}
		done += n
	}
	return nil
}

// mapped returns a kept mapping of the file fd, whose status is st, for a
// Read to copy out of, or nil (then it maps the file for that read alone).
func mapped(fd int, st *unix.Stat_t) *readMap {
	if st.Size > maxMapped+Offset {
		return nil
	}
	reading.mu.Lock()
	defer reading.mu.Unlock()
	var m *readMap
	for _, r := range reading.maps {
		if r.dev == uint64(st.Dev) && r.ino == st.Ino {
			m = r
			break
		}
	}
	switch {
	case m != nil && int64(len(m.mem)) == st.Size:
		m.users++
		return m
	case m != nil && m.users > 0:
		return nil
	case m != nil:
		_ = unix.Munmap(m.mem)
	default:
		m = unusedMapLocked()
		if m == nil {
			return nil
		}
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		m.mem = nil
		return nil
	}
	m.dev, m.ino, m.mem, m.users = uint64(st.Dev), st.Ino, mem, 1
	return m
}

// unusedMapLocked returns a slot for a new mapping: a new one, or one no
// Read uses, unmapped; nil if every slot is in use. The caller holds
// reading.mu.
func unusedMapLocked() *readMap {
	if len(reading.maps) < maxReadMaps {
		m := &readMap{}
		reading.maps = append(reading.maps, m)
		return m
	}
	for _, m := range reading.maps {
		if m.users == 0 {
			if m.mem != nil {
				_ = unix.Munmap(m.mem)
				m.mem = nil
			}
			return m
		}
	}
	return nil
}

func doneReading(m *readMap) {
	reading.mu.Lock()
	defer reading.mu.Unlock()
	m.users--
	if reading.timer == nil {
		reading.timer = time.AfterFunc(idle, dropMaps)
	} else {
		reading.timer.Reset(idle)
	}
}

// dropMaps unmaps the files no Read uses, once none has come for idle: a
// mapping keeps its file's pages.
func dropMaps() {
	reading.mu.Lock()
	defer reading.mu.Unlock()
	kept := reading.maps[:0]
	for _, m := range reading.maps {
		if m.users > 0 {
			kept = append(kept, m)
		} else if m.mem != nil {
			_ = unix.Munmap(m.mem)
		}
	}
	clear(reading.maps[len(kept):])
	reading.maps = kept
}
