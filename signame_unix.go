//go:build unix

package multiprocessing

import (
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func unixSignalName(s syscall.Signal) string {
	name := unix.SignalName(s)
	if !strings.HasPrefix(name, "SIG") {
		return ""
	}
	return name
}
