package shm

import (
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// shmDir is where shm_open keeps names on Linux: glibc's (and musl's)
// shm_open(name, flags, mode) is open("/dev/shm/"+name,
// flags|O_NOFOLLOW|O_CLOEXEC, mode), and shm_unlink is unlink(2) there. Doing
// the same here makes a block the very file Python's SharedMemory opens.
const shmDir = "/dev/shm/"

// shmFlags are what shm_open adds to Python's O_RDWR.
const shmFlags = unix.O_RDWR | unix.O_NOFOLLOW | unix.O_CLOEXEC

// CreateNamed creates the file for name, sizes it and maps it. The
// descriptor is closed once the mapping exists: a MAP_SHARED mapping keeps
// the file's memory alive on its own.
func CreateNamed(name string, size int) ([]byte, error) {
	fd, err := unix.Open(shmDir+name, shmFlags|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return nil, segmentError("create", name, err)
	}
	defer unix.Close(fd)
	// A new tmpfs file reads as zeros; ftruncate reserves no pages (see
	// SharedMemory.Buf on SIGBUS), as in Python.
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Unlink(shmDir + name)
		return nil, segmentError("create", name, os.NewSyscallError("ftruncate", err))
	}
	buf, err := mapNamed(fd, size)
	if err != nil {
		// Python too unlinks a block it could not set up, so that the name
		// is not left taken.
		unix.Unlink(shmDir + name)
		return nil, segmentError("create", name, err)
	}
	return buf, nil
}

// OpenNamed maps the whole of the existing file for name.
func OpenNamed(name string) ([]byte, error) {
	fd, err := unix.Open(shmDir+name, shmFlags, 0)
	if err != nil {
		return nil, segmentError("open", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, segmentError("open", name, os.NewSyscallError("fstat", err))
	}
	switch {
	case st.Size == 0:
		// mmap(2) refuses a length of 0 (EINVAL); Python says "cannot mmap
		// an empty file".
		return nil, fmt.Errorf("multiprocessing: open shared memory %s: it is empty", name)
	case st.Size > math.MaxInt:
		return nil, fmt.Errorf("multiprocessing: open shared memory %s: its %d bytes do not fit in an int", name, st.Size)
	}
	buf, err := mapNamed(fd, int(st.Size))
	if err != nil {
		return nil, segmentError("open", name, err)
	}
	return buf, nil
}

func mapNamed(fd, size int) ([]byte, error) {
	buf, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	return buf, os.NewSyscallError("mmap", err)
}

// UnmapNamed unmaps what CreateNamed or OpenNamed mapped.
func UnmapNamed(name string, buf []byte) error {
	if err := unix.Munmap(buf); err != nil {
		return segmentError("close", name, os.NewSyscallError("munmap", err))
	}
	return nil
}

// UnlinkNamed removes the name, as shm_unlink.
func UnlinkNamed(name string) error {
	if err := unix.Unlink(shmDir + name); err != nil {
		return segmentError("unlink", name, err)
	}
	return nil
}

// segmentError says which step failed for which name, keeping the errno
// for errors.Is: ENOENT matches fs.ErrNotExist and EEXIST fs.ErrExist.
func segmentError(step, name string, err error) error {
	return fmt.Errorf("multiprocessing: %s shared memory %s: %w", step, name, err)
}
