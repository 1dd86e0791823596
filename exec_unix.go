//go:build unix

package multiprocessing

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// An inheritance is a start method's policy for the descriptors a child
// inherits: it calls start with them (index = number in the child, -1 =
// closed), and releases what it made for them once start returns.
type inheritance func(start func(table []int) error) error

// spawnDescriptors gives the child /dev/null as stdin, and stdout and
// stderr.
func spawnDescriptors(start func(table []int) error) error {
	null, err := ownfd.DevNull()
	if err != nil {
		return err
	}
	return start([]int{null, 1, 2})
}

// forkExec execs the program as a child that runs boot, with the
// descriptors inherit gives, then sock, then dups.
func forkExec(exe string, boot *wire.Bootstrap, inherit inheritance, sock int, dups []int) (*os.Process, error) {
	var proc *os.Process
	err := inherit(func(table []int) error {
		sockFD := len(table)
		table = append(table, sock)
		boot.Files = boot.Files[:0]
		for _, fd := range dups {
			boot.Files = append(boot.Files, len(table))
			table = append(table, fd)
		}
		var deathSignal syscall.Signal
		if boot.Daemon {
			deathSignal = syscall.SIGKILL
		}
		var err error
		proc, err = execChild(exe, table, markerValue(sockFD, boot.Token, ""), deathSignal)
		return err
	})
	return proc, err
}

// execChild execs the program with the descriptors of table (index =
// number in the child, -1 = closed) and marker in its environment. With a
// deathSignal, the child gets it when this process dies, where the system
// can do that.
//
// The child is ours and not yet waited for, so its pid cannot be reused
// meanwhile: the *os.Process (a pidfd on Linux) refers to it for good.
func execChild(exe string, table []int, marker string, deathSignal syscall.Signal) (*os.Process, error) {
	attr := &syscall.ProcAttr{
		Env:   childEnv(marker),
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

// markerValue is the environment marker of a child whose bootstrap socket
// is descriptor fd: "VERSION:FD:TOKEN", with ":ROLE" for the forkserver's
// processes.
func markerValue(fd int, token, role string) string {
	v := fmt.Sprintf("%s=%d:%d:%s", markerName, wire.Version, fd, token)
	if role != "" {
		v += ":" + role
	}
	return v
}

// launchExec starts the program again as a child that runs boot. The child's
// descriptors are those inherit gives, then its end of the bootstrap
// socket, then files.
func launchExec(boot *wire.Bootstrap, files []*os.File, inherit inheritance) (popen, error) {
	exe, err := executable()
	if err != nil {
		return nil, err
	}
	// Duplicates, because asking an *os.File for its descriptor would put it
	// in blocking mode for good.
	dups := make([]int, 0, len(files))
	defer func() {
		for _, fd := range dups {
			unix.Close(fd)
		}
	}()
	for _, f := range files {
		fd, err := dupCloexec(f)
		if err != nil {
			return nil, fmt.Errorf("passing %s: %w", f.Name(), err)
		}
		dups = append(dups, fd)
	}
	token := make([]byte, 16)
	rand.Read(token)
	boot.Token = hex.EncodeToString(token)

	ours, theirs, err := ownfd.Socketpair(unix.SOCK_STREAM, "bootstrap", true, true)
	if err != nil {
		return nil, fmt.Errorf("bootstrap socket: %w", err)
	}
	proc, err := forkExec(exe, boot, inherit, ownfd.FD(theirs), dups)
	ownfd.Close(theirs)
	if err != nil {
		ownfd.Close(ours)
		return nil, fmt.Errorf("exec %s: %w", exe, err)
	}
	po := &execPopen{proc: proc, sock: ours}
	frame, err := wire.EncodeBootstrap(boot)
	if err == nil {
		// A child that dies before reading all of it makes this fail with
		// EPIPE; its exit status then tells what happened.
		err = wire.WriteFrame(po.sock, frame)
	}
	if err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		_ = proc.Kill()
		po.wait()
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return po, nil
}

func dupCloexec(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	dup := -1
	cerr := rc.Control(func(fd uintptr) {
		dup, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if cerr != nil {
		return -1, cerr
	}
	return dup, err
}

// execPopen is a child started by exec, under spawn or fork.
type execPopen struct {
	proc *os.Process
	sock *os.File // the parent's end of the bootstrap socket
}

func (e *execPopen) pid() int { return e.proc.Pid }

func (e *execPopen) wait() (int, wire.Report) {
	code := exitCode(e.proc.Wait())
	report := drainReports(e.sock)
	ownfd.Close(e.sock)
	return code, report
}

// exitCode is Python's exit code of a process that ended in state: its
// exit status, or -N after death by signal N; 255 if it could not be
// waited for.
func exitCode(state *os.ProcessState, err error) int {
	if err != nil {
		return 255
	}
	ws := state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -int(ws.Signal())
	}
	return ws.ExitStatus()
}

// drainReports reads what a child reported over sock. The child has
// ended, so all it wrote is already in the socket's buffer: the reads do
// not wait, even if some other process still holds the child's end.
func drainReports(sock *os.File) wire.Report {
	var data []byte
	rc, err := sock.SyscallConn()
	if err != nil {
		return wire.Report{}
	}
	buf := make([]byte, 64<<10)
	_ = rc.Control(func(fd uintptr) {
		// What is there, not what may come: sock may be a blocking one.
		_ = unix.SetNonblock(int(fd), true)
		for {
			n, err := unix.Read(int(fd), buf)
			if n <= 0 || err != nil {
				return
			}
			data = append(data, buf[:n]...)
		}
	})
	return parseReports(data)
}

// parseReports reads a child's report frames from data, up to the first
// that does not parse.
func parseReports(data []byte) wire.Report {
	var report wire.Report
	r := bytes.NewReader(data)
	for {
		frame, err := wire.ReadFrame(r)
		if err != nil || report.Add(frame) != nil {
			return report
		}
	}
}

func (e *execPopen) signal(sig syscall.Signal) error {
	err := e.proc.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

func (e *execPopen) release() { _ = e.proc.Release() }

// childEnv is the environment of a child: the parent's, and marker.
//
// A test binary built with -cover and run by go test gets its coverage
// directory as -test.gocoverdir, which only the testing package reads; a
// child never returns through it, so it gets the directory as GOCOVERDIR,
// and the Go runtime writes the child's counters when it exits.
//
// A race-enabled Go program sleeps a second when it exits with code 0, so
// that late goroutines can still report races (GORACE's atexit_sleep_ms).
// A child has joined its target when it exits, so unless the user chose a
// value, its children skip that sleep, which would otherwise dominate every
// Join under go test -race.
func childEnv(marker string) []string {
	env := append(os.Environ(), marker)
	if os.Getenv("GOCOVERDIR") == "" {
		for _, arg := range os.Args[1:] {
			if dir, ok := strings.CutPrefix(arg, "-test.gocoverdir="); ok {
				env = append(env, "GOCOVERDIR="+dir)
			}
		}
	}
	if !raceEnabled {
		return env
	}
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GORACE="); ok {
			if !strings.Contains(v, "atexit_sleep_ms") {
				env[i] = kv + " atexit_sleep_ms=0"
			}
			return env
		}
	}
	return append(env, "GORACE=atexit_sleep_ms=0")
}
