package multiprocessing

import "syscall"

var windowsSignalNames = map[syscall.Signal]string{
	syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL",
}

func unixSignalName(s syscall.Signal) string { return windowsSignalNames[s] }
