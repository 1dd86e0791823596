//go:build unix

// Package proc starts this executable again, as a child: the exec itself
// with its table of descriptors, the child's environment, the
// parent-death signal, and what the operating system says of a process
// that ended.
package proc

import (
	"os"
	"syscall"
)

// Exec execs the program at exe with the descriptors of table (index =
// number in the child, -1 = closed) and marker ("NAME=VALUE") in its
// environment. With a deathSignal, the child gets it when this process
// dies, where the system can do that.
//
// The child is ours and not yet waited for, so its pid cannot be reused
// meanwhile: the *os.Process (a pidfd on Linux) refers to it for good.
func Exec(exe string, table []int, marker string, deathSignal syscall.Signal) (*os.Process, error) {
	attr := &syscall.ProcAttr{
		Env:   Env(marker),
		Files: make([]uintptr, len(table)),
		Sys:   &syscall.SysProcAttr{},
	}
	for i, fd := range table {
		attr.Files[i] = uintptr(fd)
	}
	var pid int
	var err error
	start := func() { pid, err = syscall.ForkExec(exe, os.Args, attr) }
	if deathSignal != 0 {
		setDeathSignal(attr.Sys, deathSignal)
		onLifelineThread(start)
	} else {
		start()
	}
	if err != nil {
		return nil, err
	}
	return os.FindProcess(pid)
}

// ExitCode is Python's exit code of a process that ended in state: its
// exit status, or -N after death by signal N; 255 if it could not be
// waited for.
func ExitCode(state *os.ProcessState, err error) int {
	if err != nil {
		return 255
	}
	ws := state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -int(ws.Signal())
	}
	return ws.ExitStatus()
}

// KillSelf ends this process with SIGKILL: a daemon whose parent died.
func KillSelf() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
