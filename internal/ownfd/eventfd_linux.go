package ownfd

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// Eventfd makes an eventfd, pollable or in blocking mode (see Socketpair).
func Eventfd(name string, pollable bool) (*os.File, error) {
	mu.Lock()
	defer mu.Unlock()
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	return adoptLocked(fd, name, pollable), nil
}

// Epoll makes an epoll instance, in blocking mode: it is waited on with
// epoll_wait in a thread of the caller's.
func Epoll(name string) (*os.File, error) {
	mu.Lock()
	defer mu.Unlock()
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return adoptLocked(fd, name, false), nil
}

// EventfdIncrement is what a write to an eventfd adds: 1, as the eventfd
// reads it.
var EventfdIncrement = binary.NativeEndian.AppendUint64(nil, 1)
