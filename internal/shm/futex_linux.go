package shm

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The futex operations, without FUTEX_PRIVATE_FLAG: the kernel keys a
// shared futex by the file and offset behind the address, so processes
// that map the same memory file at different addresses wait on the same
// word.
const (
	futexWait = 0
	futexWake = 1
)

// Wait sleeps while *w holds val, for at most d (d <= 0: not at all), or
// until Wake; it may also return early, as futexes do. The calling
// goroutine keeps its thread while it sleeps.
func Wait(w *atomic.Uint32, val uint32, d time.Duration) {
	if d <= 0 {
		return
	}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	// EAGAIN (*w no longer val), EINTR and ETIMEDOUT all mean: look again.
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWait, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// Wake wakes up to n of the threads that Wait on w, in any process.
func Wake(w *atomic.Uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWake, uintptr(n), 0, 0, 0)
}
