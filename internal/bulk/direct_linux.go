package bulk

import (
	"errors"

	"golang.org/x/sys/unix"
)

// errRefused is readRemote's error when the system will not let this
// process read another's memory.
var errRefused = errors.New("bulk: reading another process's memory refused")

// readRemote copies the parts of process pid's memory into dst, whose
// lengths add up to theirs, in one process_vm_readv call or a few.
func readRemote(pid int, dst [][]byte, parts []remotePart) error {
	local := make([]unix.Iovec, 0, len(dst))
	for _, d := range dst {
		if len(d) > 0 {
			iov := unix.Iovec{Base: &d[0]}
			iov.SetLen(len(d))
			local = append(local, iov)
		}
	}
	remote := make([]unix.RemoteIovec, len(parts))
	total := 0
	for i, p := range parts {
		remote[i] = unix.RemoteIovec{Base: uintptr(p.addr), Len: int(p.len)}
		total += int(p.len)
	}
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	switch {
	case err == unix.EPERM || err == unix.ENOSYS || err == unix.EACCES:
		return errRefused
	case err != nil:
		return err
	case n != total:
		return errors.New("bulk: a direct copy cut short")
	}
	return nil
}
