package multiprocessing

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/mpgo/multiprocessing/internal/shm"
)

// SharedMemory is Python's multiprocessing.shared_memory.SharedMemory: a
// named block of memory that unrelated processes, Go or Python, open by its
// name. On Linux it is the file /dev/shm/<name>, which is what shm_open
// makes there, so a Python program that opens SharedMemory(name=...) maps
// the same bytes. Other systems are not supported yet: CreateSharedMemory
// and OpenSharedMemory return an error matching ErrUnsupported there.
//
// The name outlives every handle and every process until one of them calls
// Unlink; Close only ends this handle's view. Unlike Python, no resource
// tracker is involved: a process that merely opened a block never unlinks
// it, and nothing prints warnings at exit (CPython gh-82300). Whoever
// creates a block should see to it that someone unlinks it; a block whose
// name is never unlinked stays in /dev/shm until the machine restarts.
//
// The bytes themselves have no lock: processes that write the same bytes
// need one of their own, or sync/atomic on aligned words of Buf.
//
// Its methods may be called from several goroutines at once. A nil
// *SharedMemory is not a block: its methods panic. The zero SharedMemory
// is a closed handle without a name: Buf is nil, Close returns nil and
// Unlink an error.
type SharedMemory struct {
	name string
	size int

	mu  sync.Mutex
	buf []byte // the mapping; nil once closed
}

// generatedNamePrefix starts the names CreateSharedMemory makes up, as
// Python's "psm_" does.
const generatedNamePrefix = "psm_"

// CreateSharedMemory creates the block name, of size bytes, all zero, and
// maps it. With name "" it makes up a fresh name, as Python does:
// "psm_" and ten random hex digits, 14 characters in all; Name reports it.
// A name may start with one '/', which Name leaves out, as Python's does; otherwise it must not be empty and must not contain '/'
// or a NUL byte, nor be "." or "..": such a name, or a size below 1, gives
// an error matching ErrBadArgs.
//
// A name that is already taken gives an error matching fs.ErrExist; the
// existing block is left alone.
func CreateSharedMemory(name string, size int) (*SharedMemory, error) {
	if size <= 0 {
		return nil, fmt.Errorf("%w: SharedMemory size %d: it must be positive", ErrBadArgs, size)
	}
	if name != "" {
		name, err := checkSharedMemoryName(name)
		if err != nil {
			return nil, err
		}
		return createSharedMemory(name, size)
	}
	for {
		m, err := createSharedMemory(generateSharedMemoryName(), size)
		// Ten hex digits make a collision unlikely, not impossible: Python
		// draws again too.
		if !errors.Is(err, fs.ErrExist) {
			return m, err
		}
	}
}

func createSharedMemory(name string, size int) (*SharedMemory, error) {
	buf, err := shm.CreateNamed(name, size)
	if err != nil {
		return nil, err
	}
	return &SharedMemory{name: name, size: size, buf: buf}, nil
}

// OpenSharedMemory maps the existing block name, which a Go or Python
// process created; Size is its size then. The rules for the name are
// CreateSharedMemory's, and a name that breaks them gives an error matching
// ErrBadArgs. A name that no block has gives an error matching
// fs.ErrNotExist, and an empty block (a file of size 0 in /dev/shm, which
// no CreateSharedMemory makes) gives an error too, as Python refuses to map
// it. Opening never makes this process responsible for unlinking the name.
func OpenSharedMemory(name string) (*SharedMemory, error) {
	name, err := checkSharedMemoryName(name)
	if err != nil {
		return nil, err
	}
	buf, err := shm.OpenNamed(name)
	if err != nil {
		return nil, err
	}
	return &SharedMemory{name: name, size: len(buf), buf: buf}, nil
}

// checkSharedMemoryName returns name without its leading '/', or an error
// matching ErrBadArgs when it cannot be a file directly in /dev/shm.
func checkSharedMemoryName(name string) (string, error) {
	trimmed := strings.TrimPrefix(name, "/")
	switch {
	case trimmed == "":
		return "", fmt.Errorf("%w: SharedMemory name %q: it is empty", ErrBadArgs, name)
	case trimmed == "." || trimmed == "..":
		return "", fmt.Errorf("%w: SharedMemory name %q: it names a directory", ErrBadArgs, name)
	case strings.Contains(trimmed, "/"):
		return "", fmt.Errorf("%w: SharedMemory name %q: it has a '/' after the first character", ErrBadArgs, name)
	case strings.ContainsRune(trimmed, 0):
		return "", fmt.Errorf("%w: SharedMemory name %q: it has a NUL byte", ErrBadArgs, name)
	}
	return trimmed, nil
}

// generateSharedMemoryName makes up a name as Python's _make_filename
// does, with ten hex digits where Python draws eight ("/psm_" and eight
// make Python's 13 characters; ours have no '/').
func generateSharedMemoryName() string {
	b := make([]byte, 5)
	rand.Read(b) // since Go 1.24 it crashes the program rather than fail
	return generatedNamePrefix + hex.EncodeToString(b)
}

// Name is the block's name, without a leading '/', as Python's name
// property gives it: the string another process passes to
// OpenSharedMemory. It stays the same after Close and after Unlink.
func (m *SharedMemory) Name() string { return m.name }

// Size is the block's length in bytes: the size given to
// CreateSharedMemory, or the size the block had when OpenSharedMemory
// mapped it. It stays the same after Close.
func (m *SharedMemory) Size() int { return m.size }

// Buf is the shared memory itself, Size bytes long: what this process
// writes there, every process that has the block mapped sees at once, and
// the other way round. It is nil after Close. Keep no slice of it past
// Close: the memory is gone then, and touching it crashes the program with
// a segmentation fault.
//
// Pages are allocated when first written. When /dev/shm is full, that
// write kills the process with SIGBUS, as it does in Python.
func (m *SharedMemory) Buf() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.buf
}

// Close unmaps this handle's view of the block: Buf is nil afterwards. The
// block and its name stay, for other handles and processes, and for Unlink,
// which still works after Close. Closing twice, or at the same time from
// several goroutines, unmaps once; the later calls return nil.
func (m *SharedMemory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf == nil {
		return nil
	}
	buf := m.buf
	m.buf = nil
	return shm.UnmapNamed(m.name, buf)
}

// Unlink removes the block's name, as Python's unlink does, from whichever
// process calls it: afterwards OpenSharedMemory and CreateSharedMemory see
// the name free, while every mapping made before, this handle's included,
// keeps working until it is closed. The memory is freed when the last
// mapping goes. It works before or after Close. A name already unlinked,
// by this process or another, gives an error matching fs.ErrNotExist; but
// if a new block has taken the name since, Unlink removes that one's name,
// as Python's does: the name is all Unlink knows.
func (m *SharedMemory) Unlink() error {
	if m.name == "" {
		return fmt.Errorf("%w: the zero SharedMemory has no name to unlink", ErrBadArgs)
	}
	return shm.UnlinkNamed(m.name)
}
