package ownfd

import "golang.org/x/sys/unix"

// memfd makes an anonymous memory file, close-on-exec.
func memfd(name string) (int, error) { return unix.MemfdCreate(name, unix.MFD_CLOEXEC) }
