//go:build unix && !linux

// Elsewhere than on Linux there is no /proc to read, and no forkserver:
// the tests that need them skip, and whether a process has ended is asked
// of kill(2).

package multiprocessing_test

import (
	"syscall"
	"testing"
)

// gone reports whether pid has ended (a zombie counts as running here).
func gone(pid int) bool { return syscall.Kill(pid, 0) == syscall.ESRCH }

func statFields(string) ([]string, bool) { return nil, false }

func needsProc(t *testing.T) {
	t.Helper()
	t.Skip("needs Linux's /proc")
}

func countFDs(t *testing.T) int                         { needsProc(t); return 0 }
func zombies(t *testing.T) []int                        { needsProc(t); return nil }
func zombiesOf(t *testing.T, _ int) []int               { needsProc(t); return nil }
func processStats(t *testing.T) map[int][]string        { needsProc(t); return nil }
func openFDs(t *testing.T) map[string]string            { needsProc(t); return nil }
func newFDs(t *testing.T, _ map[string]string) []string { needsProc(t); return nil }
func serverZombies(t *testing.T) []int                  { needsProc(t); return nil }
func childrenOf(t *testing.T, _ int) map[int]bool       { needsProc(t); return nil }
func killForkserver(t *testing.T) map[int]bool          { return nil } // there is none

func sharedFutexWaiters(int) int { return 1 }
