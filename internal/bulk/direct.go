//go:build unix

package bulk

import (
	"sync"
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
// message before it copies it into the file. A reader that waits for the
// message takes tens of microseconds to wake, and more when its process
// collects garbage: with 0.1 ms, a parent receiving 4 MiB messages from
// a child claimed 1 to 12 of 20, with 0.3 ms all of them.
const verdictWait = 300 * time.Microsecond

// maxDirectParts is how many pieces of the writer's memory the header
// can name.
const maxDirectParts = 4

// remoteParts returns the pieces of the writer's memory the header names,
// or none unless they add up to size bytes.
func (h header) remoteParts(size int) []remotePart {
	n := *(*uint32)(unsafe.Pointer(&h[npartsOff]))
	if n > maxDirectParts {
		return nil
	}
	parts := make([]remotePart, n)
	total := uint64(0)
	for i := range parts {
		parts[i] = *(*remotePart)(unsafe.Pointer(&h[partsOff+16*i]))
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
		*(*remotePart)(unsafe.Pointer(&h[partsOff+16*n])) = remotePart{uint64(uintptr(unsafe.Pointer(&p[0]))), uint64(len(p))}
		n++
	}
	*(*uint32)(unsafe.Pointer(&h[npartsOff])) = uint32(n)
	*(*int64)(unsafe.Pointer(&h[offeredOff])) = monotonic()
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
// it claims the message of size bytes for a copy straight from the
// writer's memory, and returns the parts of that memory to copy
// (copyClaimed), or nil: then the writer fills the file. Only from's
// memory is read, and only when the file names from, with its start time,
// as its writer: a file cannot make its reader copy another process's
// memory.
func (h header) claim(size, from int) []remotePart {
	v := h.verdict()
	w := h.writer().Load()
	parts := h.remoteParts(size)
	// A writer whose start time is not in its owner word cannot be told
	// from a later process with its pid: no direct copy from it.
	if from <= 0 || int(w>>32) != from || uint32(w) == 0 || len(parts) == 0 || refused(w) {
		if v.CompareAndSwap(undecided, fillIt) {
			shm.Wake(v, 1)
		}
		return nil
	}
	h.reader().Store(shm.Self())
	if !v.CompareAndSwap(undecided, direct) {
		return nil // the writer fills it
	}
	if AfterClaim != nil {
		AfterClaim()
	}
	return parts
}

// copyClaimed copies the claimed parts of the writer from into dst, whose
// lengths add up to theirs, and returns whether it did; if not, the
// writer fills the file. A writer gone is ErrWriterDied.
func (h header) copyClaimed(dst [][]byte, from int, parts []remotePart) (bool, error) {
	v, w := h.verdict(), h.writer().Load()
	err := readRemote(from, dst, parts)
	if err == nil && mayBeReused(h) && !shm.Alive(from, w) {
		err = ErrWriterDied // its pid another's now: what was copied is not its
	}
	if err == nil {
		if !v.CompareAndSwap(direct, copied) {
			return false, nil // taken back: the file holds it
		}
		h.mark().Store(read)
		shm.Wake(v, 1)
		DirectCopies.Add(1)
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
	age := monotonic() - *(*int64)(unsafe.Pointer(&h[offeredOff]))
	return age < 0 || age > int64(10*time.Millisecond) // in the future: not to be believed
}

// monotonic is CLOCK_MONOTONIC in ns, which all processes share.
func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
