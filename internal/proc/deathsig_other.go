//go:build unix && !linux

package proc

import (
	"os"
	"syscall"
)

// Without a parent-death signal, daemon children rely on the lifeline
// alone: they end when their bootstrap socket reports the parent gone.
func onLifelineThread(f func()) { f() }

func setDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}

// Executable is the path that execs this program again.
func Executable() (string, error) { return os.Executable() }
