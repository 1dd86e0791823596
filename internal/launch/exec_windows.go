package launch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/mpgo/multiprocessing/internal/bootstrap"
	"github.com/mpgo/multiprocessing/internal/proc"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// Spawn starts a fresh process of the program (CreateProcess) that
// inherits stdout, stderr, its two bootstrap pipes and the handles of its
// arguments, and nothing else (an explicit handle list); its stdin is NUL.
var Spawn Launcher = spawnLauncher{}

type spawnLauncher struct{}

func (spawnLauncher) Launch(boot *wire.Bootstrap, files []*os.File) (Child, error) {
	exe, err := proc.Executable()
	if err != nil {
		return nil, err
	}
	boot.Token = bootstrap.NewToken()
	// The child reads its bootstrap from bootR, which is then its
	// lifeline, and writes its reports to repW. None of the four ends is
	// inheritable: the child gets duplicates made for its start alone.
	bootR, bootW, err := privatePipe()
	if err != nil {
		return nil, fmt.Errorf("bootstrap pipe: %w", err)
	}
	repR, repW, err := privatePipe()
	if err != nil {
		bootR.Close()
		bootW.Close()
		return nil, fmt.Errorf("reports pipe: %w", err)
	}
	p, err := start(exe, boot, append([]*os.File{bootR, repW}, files...))
	bootR.Close()
	repW.Close()
	if err != nil {
		bootW.Close()
		repR.Close()
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	c := &spawnChild{proc: p, lifeline: bootW, reported: make(chan []byte, 1)}
	// The reports are read as they come: a pipe holds a few kilobytes,
	// and a child whose outcome is longer would otherwise never end.
	go func() {
		data, _ := io.ReadAll(repR)
		repR.Close()
		c.reported <- data
	}()
	// A handle that can end the child even once the *os.Process has
	// been waited for: taken now, while the process is ours and not yet
	// waited for, so its pid cannot be another's.
	c.handle, _ = windows.OpenProcess(windows.PROCESS_TERMINATE|windows.PROCESS_SET_QUOTA, false, uint32(p.Pid))
	if boot.Daemon && c.handle != 0 {
		// A daemon also ends with the job this process holds, which the
		// system closes when this process dies, however it dies: beside
		// the lifeline, which a child whose Go runtime no longer runs
		// would not read. Where jobs are not to be had, the lifeline
		// alone does it.
		if job := daemonJob(); job != 0 {
			_ = windows.AssignProcessToJobObject(job, c.handle)
		}
	}
	if err := wire.WriteFrame(bootW, wire.EncodeBootstrap(boot)); err != nil && !errors.Is(err, syscall.ERROR_BROKEN_PIPE) && !errors.Is(err, windows.ERROR_NO_DATA) {
		c.Signal(syscall.SIGKILL)
		c.Wait()
		c.Release()
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return c, nil
}

// privatePipe is os.Pipe with neither end inheritable (Go makes both
// so): no process started without a handle list, by C code say, holds
// them.
func privatePipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	for _, f := range []*os.File{r, w} {
		windows.SetHandleInformation(windows.Handle(handleOf(f)), windows.HANDLE_FLAG_INHERIT, 0)
	}
	return r, w, nil
}

// handleOf is f's handle, taken without Fd, which would take f out of
// Go's completion port: a pipe end passed to a child may still be used
// here.
func handleOf(f *os.File) syscall.Handle {
	h := syscall.InvalidHandle
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(u uintptr) { h = syscall.Handle(u) })
	}
	return h
}

// daemonJob is a job that kills its processes when its last handle, this
// process's, is closed; 0 where it cannot be made.
var daemonJob = sync.OnceValue(func() windows.Handle {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return 0
	}
	return job
})

// start starts exe with os.Args, stdout and stderr, and an inheritable
// duplicate of each of files, made for this start alone (as Go does for
// stdio): the files themselves never change, and two starts that pass the
// same file, or one that passes it twice, each have their own. The first
// two files are the bootstrap and reports pipes, named in the marker; the
// rest are boot's Files, whose numbers become the duplicates'.
func start(exe string, boot *wire.Bootstrap, files []*os.File) (*os.Process, error) {
	self := windows.CurrentProcess()
	dups := make([]syscall.Handle, 0, len(files))
	defer func() {
		for _, h := range dups {
			windows.CloseHandle(windows.Handle(h))
		}
	}()
	for _, f := range files {
		var dup windows.Handle
		if err := windows.DuplicateHandle(self, windows.Handle(handleOf(f)), self, &dup, 0, true, windows.DUPLICATE_SAME_ACCESS); err != nil {
			return nil, fmt.Errorf("passing %s: %w", f.Name(), err)
		}
		dups = append(dups, syscall.Handle(dup))
	}
	boot.Files = boot.Files[:0]
	for _, h := range dups[2:] {
		boot.Files = append(boot.Files, int(h))
	}
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        os.Args,
		Env:         proc.Env(bootstrap.MarkerPair(int(dups[0]), int(dups[1]), boot.Token)),
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{AdditionalInheritedHandles: dups},
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd.Process, nil
}

// spawnChild is a child started by Spawn.
type spawnChild struct {
	proc     *os.Process
	lifeline *os.File    // the writing end of the child's bootstrap pipe
	reported chan []byte // what the child reported, once its pipe has ended

	mu     sync.Mutex
	handle windows.Handle // PROCESS_TERMINATE; 0 if it could not be had, or once closed
	ended  bool
}

func (c *spawnChild) Pid() int { return c.proc.Pid }

// Wait waits for the child, then for its reports: the end of its reports
// pipe, which only the child held; a second at most, should some other
// process hold it after all.
func (c *spawnChild) Wait() (int, wire.Report) {
	code := proc.ExitCode(c.proc.Wait())
	c.mu.Lock()
	if c.handle != 0 {
		windows.CloseHandle(c.handle)
		c.handle = 0
	}
	c.ended = true
	c.mu.Unlock()
	c.lifeline.Close()
	var data []byte
	select {
	case data = <-c.reported:
	case <-time.After(time.Second):
	}
	return code, bootstrap.ParseReports(data)
}

// Signal ends the child with TerminateProcess, whatever sig, with the
// exit code that makes its ExitCode -sig, as Python reports Terminate;
// nothing once it has ended.
func (c *spawnChild) Signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.ended:
		return nil
	case c.handle == 0:
		return c.proc.Kill() // no handle to be had: exit code 1, not -sig
	}
	err := windows.TerminateProcess(c.handle, proc.TerminatedBy(sig))
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return nil // it has ended already
	}
	return err
}

func (c *spawnChild) Release() { _ = c.proc.Release() }
