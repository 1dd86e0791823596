// Package shm maps anonymous shared memory that travels between processes
// as a descriptor, and waits on 32-bit words in it: the ground the
// library's locks, events and shared values stand on.
//
// A Segment is a memory file (memfd_create on Linux) mapped MAP_SHARED:
// every process that maps it sees the same bytes, and it lives as long as
// some process holds its descriptor or its mapping. There is no name in
// the file system to remove and nothing for a tracker to clean up.
package shm

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A Segment is shared memory of a fixed size, mapped in this process.
type Segment struct {
	mu    sync.Mutex
	file  *os.File // nil once closed
	mem   []byte   // unmapped once the Segment is unreachable, unless pinned
	unmap runtime.Cleanup
}

// File is the segment's descriptor, to send to another process; nil after
// Close.
func (s *Segment) File() *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file
}

// Pin keeps the mapping for as long as this process lives, for memory
// handed out as pointers that do not keep the Segment alive.
func (s *Segment) Pin() { s.unmap.Stop() }

// Bytes is the shared memory itself.
func (s *Segment) Bytes() []byte { return s.mem }

// Close closes the segment's descriptor, so that no child started later
// gets it. The mapping stays until the Segment is unreachable: a
// goroutine still in a method of what the memory holds runs on, and the
// callers of Uint32 and Uint64 keep the Segment alive (runtime.KeepAlive)
// while they use the words. A second Close does nothing.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	err := closeFile(s.file)
	s.file = nil
	return err
}

// Uint32 is the 32-bit word at offset off of the segment, which must be a
// multiple of 4.
func (s *Segment) Uint32(off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&s.mem[off : off+4][0]))
}

// Uint64 is the 64-bit word at offset off, a multiple of 8.
func (s *Segment) Uint64(off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&s.mem[off : off+8][0]))
}
