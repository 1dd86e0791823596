package launch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
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
	// lifeline, and writes its reports to repW.
	bootR, bootW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("bootstrap pipe: %w", err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		bootR.Close()
		bootW.Close()
		return nil, fmt.Errorf("reports pipe: %w", err)
	}
	theirs := []*os.File{bootR, repW}
	handles := []syscall.Handle{handleOf(bootR), handleOf(repW)}
	boot.Files = boot.Files[:0]
	for _, f := range files {
		h := handleOf(f)
		handles = append(handles, h)
		boot.Files = append(boot.Files, int(h))
	}
	p, err := start(exe, handles, bootstrap.MarkerPair(int(handles[0]), int(handles[1]), boot.Token))
	for _, f := range theirs {
		f.Close()
	}
	if err != nil {
		bootW.Close()
		repR.Close()
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	c := &spawnChild{proc: p, lifeline: bootW, reports: repR}
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

var startMu sync.Mutex

// start starts exe with os.Args, marker in its environment, stdout and
// stderr, and handles: made inheritable for this one start, whose handle
// list keeps every other start from inheriting them.
func start(exe string, handles []syscall.Handle, marker string) (*os.Process, error) {
	// One start at a time: two that pass the same handle (a file given to
	// two children) would otherwise take its inheritance from each other.
	startMu.Lock()
	defer startMu.Unlock()
	for _, h := range handles {
		if err := windows.SetHandleInformation(windows.Handle(h), windows.HANDLE_FLAG_INHERIT, windows.HANDLE_FLAG_INHERIT); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, h := range handles {
			windows.SetHandleInformation(windows.Handle(h), windows.HANDLE_FLAG_INHERIT, 0)
		}
	}()
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        os.Args,
		Env:         proc.Env(marker),
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{AdditionalInheritedHandles: handles},
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd.Process, nil
}

// spawnChild is a child started by Spawn.
type spawnChild struct {
	proc     *os.Process
	handle   windows.Handle // PROCESS_TERMINATE; 0 if it could not be had
	lifeline *os.File       // the writing end of the child's bootstrap pipe
	reports  *os.File       // the reading end of its reports pipe
}

func (c *spawnChild) Pid() int { return c.proc.Pid }

func (c *spawnChild) Wait() (int, wire.Report) {
	code := proc.ExitCode(c.proc.Wait())
	report := bootstrap.DrainReports(c.reports)
	c.reports.Close()
	c.lifeline.Close()
	return code, report
}

// Signal ends the child with TerminateProcess, whatever sig, with the
// exit code that makes its ExitCode -sig, as Python reports Terminate;
// nothing once it has ended.
func (c *spawnChild) Signal(sig syscall.Signal) error {
	if c.handle == 0 {
		return c.proc.Kill()
	}
	err := windows.TerminateProcess(c.handle, proc.TerminatedBy(sig))
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return nil // it has ended already
	}
	return err
}

func (c *spawnChild) Release() {
	if c.handle != 0 {
		windows.CloseHandle(c.handle)
	}
	_ = c.proc.Release()
}
