//go:build unix

package proc

import (
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// SignalName gives the name of a signal, "SIGTERM", or "" if it has none.
func SignalName(s syscall.Signal) string {
	name := unix.SignalName(s)
	if !strings.HasPrefix(name, "SIG") {
		return ""
	}
	return name
}
