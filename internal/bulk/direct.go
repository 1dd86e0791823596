//go:build unix

package bulk

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/shm"
)

// A streamed message may also go in one copy: its reader copies it
// straight out of the writer's memory (process_vm_readv), while the
// writer waits, rather than the writer copying it into the file and the
// reader out of it. The two agree through the verdict word of the file's
// header: the reader claims the message (direct) and, once it has copied
// it, says so (copied); or the writer, when no reader has come within
// verdictWait, or the reader asks it to (fillIt: the system refused the
// reader), copies the message into the file after all, and the reader
// reads it there as it lands.
const (
	undecided = iota
	direct
	fillIt
	copied
)

// verdictWait is how long a writer waits for its reader to claim a
// message before it copies it into the file: a reader that waits for the
// message takes a few tens of microseconds to wake.
const verdictWait = 100 * time.Microsecond

// maxDirectParts is how many pieces of the writer's memory the header
// can name.
const maxDirectParts = 4

// The direct words of the header, after the others.
const (
	verdictOff = 24                           // uint32: the verdict
	readerOff  = 32                           // uint64: the claiming reader's owner word
	npartsOff  = 40                           // uint32: how many pieces of the writer's memory follow
	partsOff   = 48                           // [maxDirectParts]{address, length uint64}
	offeredOff = partsOff + 16*maxDirectParts // int64: when, in ns of CLOCK_MONOTONIC
)

func (h header) verdict() *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&h.page[verdictOff]))
}

func (h header) reader() *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&h.page[readerOff]))
}

// remoteParts returns the pieces of the writer's memory the header names,
// or none unless they add up to size bytes.
func (h header) remoteParts(size int) []remotePart {
	n := *(*uint32)(unsafe.Pointer(&h.page[npartsOff]))
	if n > maxDirectParts {
		return nil
	}
	parts := make([]remotePart, n)
	total := uint64(0)
	for i := range parts {
		parts[i] = *(*remotePart)(unsafe.Pointer(&h.page[partsOff+16*i]))
		total += parts[i].len
		if parts[i].len > uint64(size) {
			return nil
		}
	}
	if total != uint64(size) {
		return nil
	}
	return parts
}

type remotePart struct{ addr, len uint64 }

// offerDirect names the writer's parts in the header, so that a reader may
// copy them from its memory; none when there are too many.
func (h header) offerDirect(parts [][]byte, offer bool) {
	h.verdict().Store(undecided)
	h.reader().Store(0)
	n := 0
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		if n == maxDirectParts || !offer {
			n = 0
			break
		}
		*(*remotePart)(unsafe.Pointer(&h.page[partsOff+16*n])) = remotePart{uint64(uintptr(unsafe.Pointer(&p[0]))), uint64(len(p))}
		n++
	}
	*(*uint32)(unsafe.Pointer(&h.page[npartsOff])) = uint32(n)
	*(*int64)(unsafe.Pointer(&h.page[offeredOff])) = monotonic()
	if n == 0 {
		h.verdict().Store(fillIt)
	}
}

// awaitVerdict is the writer's side, once the file is sent: it returns
// whether it must copy the message of n bytes into the file. It waits for
// the reader's verdict, for verdictWait if none comes, and once a reader
// has claimed the message, until it has copied it, dies, or has taken
// longer than any copy should (claimWait): then the writer takes the
// message back (direct to fillIt) and fills the file, and the reader,
// finding its claim gone, reads the file instead of what it copied.
func (h header) awaitVerdict(n int) (fill bool) {
	v := h.verdict()
	deadline := time.Now().Add(verdictWait)
	var claimed time.Time
	for {
		switch cur := v.Load(); cur {
		case fillIt:
			return true
		case copied:
			return false
		case undecided:
			left := time.Until(deadline)
			if left <= 0 {
				if v.CompareAndSwap(undecided, fillIt) {
					return true
				}
				continue
			}
			shm.Wait(v, undecided, left)
		case direct:
			if claimed.IsZero() {
				claimed = time.Now()
			}
			shm.Wait(v, direct, asleep)
			if v.Load() != direct {
				continue
			}
			r := h.reader().Load()
			if !shm.Alive(int(r>>32), r) {
				return false // its reader took it, and died: lost with it
			}
			if time.Since(claimed) > claimWait(n) && v.CompareAndSwap(direct, fillIt) {
				return true
			}
		default:
			return true // a header no writer of ours wrote
		}
	}
}

// claimWait is how long a writer lets a reader copy n bytes from its
// memory before it takes the message back: far longer than any copy
// takes (a second, plus a second for each 256 MiB), so that only a
// reader stopped in the middle, or one that claimed and never copies,
// meets it.
func claimWait(n int) time.Duration { return time.Second + time.Duration(n>>28)*time.Second }

// refusals are the writers (owner words) whose memory this process was
// refused to read: it asks them to fill at once. Forgotten when there are
// many.
var refusals struct {
	sync.Mutex
	owners map[uint64]bool
}

func refused(owner uint64) bool {
	refusals.Lock()
	defer refusals.Unlock()
	return refusals.owners[owner]
}

func refuse(owner uint64) {
	refusals.Lock()
	defer refusals.Unlock()
	if refusals.owners == nil || len(refusals.owners) >= 64 {
		refusals.owners = map[uint64]bool{}
	}
	refusals.owners[owner] = true
}

// claim is the reader's side, on receipt of the file from the process
// from, as the kernel named the sender of the message that announced it:
// it copies the message straight from the writer's memory into dst when
// it can, and returns whether it did; if not, the writer fills the file.
// Only from's memory is read, and only when the file names from as its
// writer: a file cannot make its reader copy another process's memory. A
// writer gone is ErrWriterDied.
func (h header) claim(dst [][]byte, from int) (bool, error) {
	v := h.verdict()
	size := 0
	for _, d := range dst {
		size += len(d)
	}
	w := h.writer.Load()
	parts := h.remoteParts(size)
	// A writer whose start time is not in its owner word cannot be told
	// from a later process with its pid: no direct copy from it.
	if from <= 0 || int(w>>32) != from || uint32(w) == 0 || len(parts) == 0 || refused(w) {
		if v.CompareAndSwap(undecided, fillIt) {
			shm.Wake(v, 1)
		}
		return false, nil
	}
	h.reader().Store(shm.Self())
	if !v.CompareAndSwap(undecided, direct) {
		return false, nil // the writer fills it
	}
	err := readRemote(from, dst, parts)
	if err == nil && mayBeReused(h) && !shm.Alive(from, w) {
		err = ErrWriterDied // its pid another's now: what was copied is not its
	}
	if err == nil {
		if !v.CompareAndSwap(direct, copied) {
			return false, nil // taken back: the file holds it
		}
		h.mark.Store(read)
		shm.Wake(v, 1)
		return true, nil
	}
	if err == errRefused {
		refuse(w)
	}
	// Refused, cut short (a fault in the writer's memory), or the writer
	// gone: the writer copies it into the file after all, unless it has
	// taken it back and done so already (then the file holds it whole,
	// whether the writer lives or not).
	if !v.CompareAndSwap(direct, fillIt) {
		return false, nil
	}
	shm.Wake(v, 1)
	if !shm.Alive(from, w) {
		return false, ErrWriterDied
	}
	return false, nil
}

// mayBeReused reports whether the writer's offer is old enough that the
// writer could have died since and its pid gone to another process: no
// system hands out every pid in 10 ms. Only then does a reader that
// copied the message read /proc to be sure the writer is the one that
// offered it (20 us: a fifth of a 1 MiB trip).
func mayBeReused(h header) bool {
	age := monotonic() - *(*int64)(unsafe.Pointer(&h.page[offeredOff]))
	return age < 0 || age > int64(10*time.Millisecond) // in the future: not to be believed
}

// monotonic is CLOCK_MONOTONIC in ns, which all processes share.
func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
