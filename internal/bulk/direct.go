//go:build unix

package bulk

import (
	"sync/atomic"
	"time"
	"unsafe"

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
	verdictOff = 24 // uint32: the verdict
	readerOff  = 32 // uint64: the claiming reader's owner word
	npartsOff  = 40 // uint32: how many pieces of the writer's memory follow
	partsOff   = 48 // [maxDirectParts]{address, length uint64}
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
	if n == 0 {
		h.verdict().Store(fillIt)
	}
}

// awaitVerdict is the writer's side, once the file is sent: it returns
// whether it must copy the message into the file, having waited for the
// reader's verdict, or for verdictWait if none comes, or until a reader
// that claimed the message has copied it (or died).
func (h header) awaitVerdict() (fill bool) {
	v := h.verdict()
	deadline := time.Now().Add(verdictWait)
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
			shm.Wait(v, direct, asleep)
			if r := h.reader().Load(); v.Load() == direct && !shm.Alive(int(r>>32), r) {
				return false // its reader took it, and died: lost with it
			}
		default:
			return true // a header no writer of ours wrote
		}
	}
}

// refused is set once this process has been refused a direct copy (no
// permission to read another process's memory, or no such call): its
// reader then asks writers to fill at once.
var refused atomic.Bool

// claim is the reader's side, on receipt of the file: it copies the
// message straight from the writer's memory into dst when it can, and
// returns whether it did; if not, the writer fills the file. A writer gone
// is ErrWriterDied.
func (h header) claim(dst [][]byte) (bool, error) {
	v := h.verdict()
	size := 0
	for _, d := range dst {
		size += len(d)
	}
	parts := h.remoteParts(size)
	if len(parts) == 0 || refused.Load() {
		if v.CompareAndSwap(undecided, fillIt) {
			shm.Wake(v, 1)
		}
		return false, nil
	}
	h.reader().Store(shm.Self())
	if !v.CompareAndSwap(undecided, direct) {
		return false, nil // the writer fills it
	}
	w := h.writer.Load()
	err := readRemote(int(w>>32), dst, parts)
	switch {
	case err == nil:
		h.mark.Store(read) // before copied: the writer may use the file again at once
		v.Store(copied)
		shm.Wake(v, 1)
		return true, nil
	case !shm.Alive(int(w>>32), w):
		return false, ErrWriterDied
	case err == errRefused:
		refused.Store(true)
	}
	// Refused, or cut short (a fault in the writer's memory): the writer
	// copies it into the file after all.
	v.Store(fillIt)
	shm.Wake(v, 1)
	return false, nil
}
