// What the tests read of /proc: whether a process has ended, the zombies
// and children of a process, and the descriptors open in this one.

package multiprocessing_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	mp "github.com/mpgo/multiprocessing"
)

// gone reports whether pid has ended: no such process, or a zombie that
// whoever adopted it has not reaped yet.
func gone(pid int) bool {
	fields, ok := statFields(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return !ok || len(fields) == 0 || fields[0] == "Z" || fields[0] == "X"
}

// statFields returns the fields of a /proc/PID/stat file after the
// command's name (state, ppid, pgrp, ...), and false if it cannot be read.
func statFields(path string) ([]string, bool) {
	stat, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	s := string(stat)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:]), true
}

func countFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// zombies lists this process's children that have ended but not been
// reaped.
func zombies(t *testing.T) []int { return zombiesOf(t, os.Getpid()) }

// zombiesOf lists the children of parent that have ended but not been
// reaped.
func zombiesOf(t *testing.T, parent int) []int {
	var found []int
	for pid, f := range processStats(t) {
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(parent) {
			found = append(found, pid)
		}
	}
	return found
}

// processStats returns the fields of /proc/PID/stat after the command's
// name (state, ppid, pgrp, ...) for every process on the machine.
func processStats(t *testing.T) map[int][]string {
	tasks, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	stats := map[int][]string{}
	for _, path := range tasks {
		if fields, ok := statFields(path); ok {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			stats[pid] = fields
		}
	}
	return stats
}

// openFDs returns what this process's descriptors refer to.
func openFDs(t *testing.T) map[string]string {
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	fds := map[string]string{}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil {
			fds[e.Name()] = target
		}
	}
	return fds
}

// newFDs lists the descriptors open now that were not open, or referred
// to something else, in before.
func newFDs(t *testing.T, before map[string]string) []string {
	var found []string
	for fd, target := range openFDs(t) {
		if before[fd] != target {
			found = append(found, fd+" -> "+target)
		}
	}
	return found
}

// serverZombies lists the forkserver's children that have ended but not
// been reaped.
func serverZombies(t *testing.T) []int {
	server := mp.ForkserverPid()
	if server == 0 {
		return nil
	}
	return zombiesOf(t, server)
}

// childrenOf returns the pids of the children of pid, from every thread's
// list in /proc.
func childrenOf(t *testing.T, pid int) map[int]bool {
	t.Helper()
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "children"))
	require.NoError(t, err)
	kids := map[int]bool{}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			kids[n] = true
		}
	}
	return kids
}

// killForkserver kills the running forkserver and waits until it and its
// directory are gone. It returns the pids of the children the server had
// when it died: its warm children, and any it started that still run.
func killForkserver(t *testing.T) map[int]bool {
	t.Helper()
	pid, dir := mp.ForkserverPid(), mp.ForkserverDir()
	if pid == 0 {
		return nil
	}
	// Stopped, it forks no child between the count and its death.
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	eventually(t, 5*time.Second, func() bool {
		fields, ok := statFields(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		return !ok || len(fields) > 0 && fields[0] == "T"
	}, "the forkserver did not stop")
	children := childrenOf(t, pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	eventually(t, 5*time.Second, func() bool { return gone(pid) }, "the forkserver survived SIGKILL")
	eventually(t, 5*time.Second, func() bool { return !exists(dir) }, "the dead forkserver's directory is left")
	// And this process knows it: the next Start starts another server
	// rather than use a ticket of the dead one.
	eventually(t, 5*time.Second, func() bool { return !mp.ForkserverRunning() }, "the dead forkserver is still taken for running")
	return children
}

// sharedFutexWaiters counts the threads of process pid that sleep in a
// shared futex wait (FUTEX_WAIT without FUTEX_PRIVATE_FLAG: the library's
// locks and events; the Go runtime's own waits are private).
func sharedFutexWaiters(pid int) int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, task.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 2 && f[0] == strconv.Itoa(unix.SYS_FUTEX) && f[2] == "0x0" {
			n++
		}
	}
	return n
}
