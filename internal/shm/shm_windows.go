package shm

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows a segment is a file mapping backed by the paging file
// (CreateFileMapping of INVALID_HANDLE_VALUE): anonymous, freed when its
// last handle and view go, and passed to a child as an inherited handle.

// New makes a zeroed segment of size bytes (rounded up to a page).
func New(name string, size int) (*Segment, error) {
	size = (size + pageSize - 1) / pageSize * pageSize
	h, err := windows.CreateFileMapping(windows.InvalidHandle, nil, windows.PAGE_READWRITE,
		uint32(uint64(size)>>32), uint32(size), nil)
	if err != nil {
		return nil, fmt.Errorf("shared memory of %d bytes: %w", size, err)
	}
	return mapHandle(h, name)
}

// Open maps the segment whose handle fd a parent passed; the segment owns
// fd from now on.
func Open(fd int, name string) (*Segment, error) { return mapHandle(windows.Handle(fd), name) }

var pageSize = os.Getpagesize()

// mapHandle maps the whole of the mapping h, whose size it learns from
// the view.
func mapHandle(h windows.Handle, name string) (*Segment, error) {
	addr, err := windows.MapViewOfFile(h, windows.FILE_MAP_READ|windows.FILE_MAP_WRITE, 0, 0, 0)
	if err != nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("mapping shared memory: %w", err)
	}
	var info windows.MemoryBasicInformation
	if err := windows.VirtualQuery(addr, &info, unsafe.Sizeof(info)); err != nil {
		windows.UnmapViewOfFile(addr)
		windows.CloseHandle(h)
		return nil, fmt.Errorf("the size of shared memory: %w", err)
	}
	// The view is memory no Go pointer owns, which the cleanup unmaps: the
	// uintptr is made a pointer through memory, as vet asks.
	mem := unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&addr))), info.RegionSize)
	s := &Segment{file: os.NewFile(uintptr(h), name), mem: mem}
	s.unmap = runtime.AddCleanup(s, func(addr uintptr) { windows.UnmapViewOfFile(addr) }, addr)
	return s, nil
}

func closeFile(f *os.File) error { return f.Close() }

// An owner word on Windows: the pid in the high 32 bits, and the low 32
// bits of the process's creation time (GetProcessTimes) in the low ones,
// so that a pid used again is not taken for the process that had it.
var self atomic.Uint64

// Self is this process's owner word.
func Self() uint64 {
	if s := self.Load(); s != 0 {
		return s
	}
	pid := os.Getpid()
	start, ok := created(uint32(pid))
	if !ok {
		return uint64(pid) << 32
	}
	s := uint64(pid)<<32 | uint64(start)
	self.Store(s)
	return s
}

// Alive reports whether process pid still runs, and is the one owner
// names when owner's pid is pid and both creation times are known.
func Alive(pid int, owner uint64) bool {
	if pid == os.Getpid() {
		return int(owner>>32) != pid || uint32(owner) == 0 || uint32(owner) == uint32(Self())
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err == windows.ERROR_INVALID_PARAMETER {
		return false // no such process
	}
	if err != nil {
		return true // not ours to ask: take it for alive
	}
	defer windows.CloseHandle(h)
	var code uint32
	if windows.GetExitCodeProcess(h, &code) == nil && code != 259 { // STILL_ACTIVE
		return false
	}
	start, ok := createdOf(h)
	return !ok || int(owner>>32) != pid || uint32(owner) == 0 || uint32(owner) == start
}

func created(pid uint32) (uint32, bool) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return 0, false
	}
	defer windows.CloseHandle(h)
	return createdOf(h)
}

func createdOf(h windows.Handle) (uint32, bool) {
	var creation, exit, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &creation, &exit, &kernel, &user); err != nil {
		return 0, false
	}
	return creation.LowDateTime | 1, true // never 0: 0 means unknown
}
