//go:build unix

package shm

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
)

// New makes a zeroed segment of size bytes (rounded up to a page), named
// name for /proc's listings. Where there are no memory files it returns
// ErrUnsupported.
func New(name string, size int) (*Segment, error) {
	f, err := ownfd.Memfd(name)
	if err != nil {
		return nil, err
	}
	size = (size + pageSize - 1) / pageSize * pageSize
	if err := unix.Ftruncate(ownfd.FD(f), int64(size)); err != nil {
		ownfd.Close(f)
		return nil, fmt.Errorf("shared memory of %d bytes: %w", size, err)
	}
	return mapFile(f, size)
}

// Open maps the segment whose descriptor fd came from another process; the
// segment owns fd from now on.
func Open(fd int, name string) (*Segment, error) {
	f := ownfd.Adopt(fd, name, false)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		ownfd.Close(f)
		return nil, err
	}
	if st.Size <= 0 || st.Size%int64(pageSize) != 0 || st.Size > 1<<40 {
		ownfd.Close(f)
		return nil, fmt.Errorf("a shared memory file of %d bytes", st.Size)
	}
	return mapFile(f, int(st.Size))
}

var pageSize = os.Getpagesize()

func mapFile(f *os.File, size int) (*Segment, error) {
	mem, err := unix.Mmap(ownfd.FD(f), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		ownfd.Close(f)
		return nil, fmt.Errorf("mapping shared memory: %w", err)
	}
	s := &Segment{file: f, mem: mem}
	s.unmap = runtime.AddCleanup(s, func(mem []byte) { unix.Munmap(mem) }, mem)
	return s, nil
}

func closeFile(f *os.File) error { return ownfd.Close(f) }
