package ownfd

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Listen makes a listening sequenced-packet Unix socket bound at addr.
func Listen(addr string) (*os.File, error) {
	mu.Lock()
	defer mu.Unlock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return adoptLocked(fd, addr, true), nil
}

// Dial connects a sequenced-packet Unix socket, named name, to addr.
func Dial(addr, name string) (*os.File, error) {
	mu.Lock()
	defer mu.Unlock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return adoptLocked(fd, name, true), nil
}
