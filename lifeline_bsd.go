//go:build unix && !linux

package multiprocessing

import (
	"os"
	"syscall"
)

// Without a parent-death signal, daemon children rely on the lifeline
// alone: they end when their bootstrap socket reports the parent gone.
func onLifelineThread(f func()) { f() }

func setDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}

func executable() (string, error) { return os.Executable() }
