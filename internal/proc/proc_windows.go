package proc

import (
	"os"
	"syscall"
)

// KillSelf ends this process: a daemon whose parent died.
func KillSelf() { os.Exit(1) }

// Executable is the program to start again.
func Executable() (string, error) { return os.Executable() }

// TerminatedBy is the exit code a child gets when Terminate, Kill or
// Interrupt end it (TerminateProcess): Python's TERMINATE, 0x10000, plus
// the signal's number, so that ExitCode gives -N as for death by signal N
// on Unix.
func TerminatedBy(sig syscall.Signal) uint32 { return 0x10000 + uint32(sig) }

// ExitCode is Python's exit code of a process that ended in state: its
// exit status, or -N when it was ended with TerminatedBy(N); 255 if it
// could not be waited for.
func ExitCode(state *os.ProcessState, err error) int {
	if err != nil {
		return 255
	}
	code := state.ExitCode()
	if code > 0x10000 && code <= 0x10000+64 {
		return -(code - 0x10000)
	}
	return code
}
