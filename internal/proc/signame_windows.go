package proc

import "syscall"

var windowsSignalNames = map[syscall.Signal]string{
	syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL",
}

// SignalName gives the name of a signal, "SIGTERM", or "" if it has none.
func SignalName(s syscall.Signal) string { return windowsSignalNames[s] }
