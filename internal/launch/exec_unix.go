//go:build unix

package launch

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/bootstrap"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/proc"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// Spawn starts a fresh exec of the program that inherits only stdout,
// stderr, the bootstrap socket and the descriptors of its arguments, with
// stdin read from /dev/null: Python's spawn.
var Spawn Launcher = execLauncher{InheritSpawn}

// Fork starts an exec of the program that inherits every descriptor open
// in the parent, at the same number, as Python's fork does, except the
// library's own (other children's bootstrap sockets must not keep their
// lifelines alive). Environment, working directory, umask and resource
// limits pass through exec anyway.
var Fork Launcher = execLauncher{inheritAll}

// An Inheritance is a start method's policy for the descriptors a child
// inherits: it calls start with them (index = number in the child, -1 =
// closed), and releases what it made for them once start returns.
type Inheritance func(start func(table []int) error) error

// InheritSpawn gives the child /dev/null as stdin, and stdout and stderr.
func InheritSpawn(start func(table []int) error) error {
	null, err := ownfd.DevNull()
	if err != nil {
		return err
	}
	return start([]int{null, 1, 2})
}

// execLauncher starts the program again as a child whose descriptors are
// those inherit gives, then its end of the bootstrap socket, then its
// files.
type execLauncher struct{ inherit Inheritance }

func (l execLauncher) Launch(boot *wire.Bootstrap, files []*os.File) (Child, error) {
	exe, err := proc.Executable()
	if err != nil {
		return nil, err
	}
	// Duplicates, because asking an *os.File for its descriptor would put it
	// in blocking mode for good.
	dups := make([]int, 0, len(files))
	defer func() { ownfd.CloseFDs(dups) }()
	for _, f := range files {
		fd, err := ownfd.Dup(f)
		if err != nil {
			return nil, fmt.Errorf("passing %s: %w", f.Name(), err)
		}
		dups = append(dups, fd)
	}
	boot.Token = bootstrap.NewToken()

	ours, theirs, err := ownfd.Socketpair(unix.SOCK_STREAM, "bootstrap", true, true)
	if err != nil {
		return nil, fmt.Errorf("bootstrap socket: %w", err)
	}
	p, err := l.exec(exe, boot, ownfd.FD(theirs), dups)
	ownfd.Close(theirs)
	if err != nil {
		ownfd.Close(ours)
		return nil, fmt.Errorf("exec %s: %w", exe, err)
	}
	c := &execChild{proc: p, sock: ours}
	// A child that dies before reading all of it makes this fail with
	// EPIPE; its exit status then tells what happened.
	err = wire.WriteFrame(c.sock, wire.EncodeBootstrap(boot))
	if err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		_ = p.Kill()
		c.Wait()
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return c, nil
}

// exec execs the program as a child that runs boot, with the descriptors
// the inheritance gives, then sock, then dups.
func (l execLauncher) exec(exe string, boot *wire.Bootstrap, sock int, dups []int) (*os.Process, error) {
	var p *os.Process
	err := l.inherit(func(table []int) error {
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
		p, err = proc.Exec(exe, table, bootstrap.MarkerValue(sockFD, boot.Token, ""), deathSignal)
		return err
	})
	return p, err
}

// execChild is a child started by exec, under spawn or fork.
type execChild struct {
	proc *os.Process
	sock *os.File // the parent's end of the bootstrap socket
}

func (e *execChild) Pid() int { return e.proc.Pid }

func (e *execChild) Wait() (int, wire.Report) {
	code := proc.ExitCode(e.proc.Wait())
	report := bootstrap.DrainReports(e.sock)
	ownfd.Close(e.sock)
	return code, report
}

func (e *execChild) Signal(sig syscall.Signal) error {
	err := e.proc.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

func (e *execChild) Release() { _ = e.proc.Release() }
