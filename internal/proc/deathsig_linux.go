package proc

import (
	"runtime"
	"sync"
	"syscall"
)

// Linux sends a child's parent-death signal when the thread that started
// it exits, not the process (golang/go#27505), and the Go runtime ends the
// thread of a goroutine that exits while locked to it. So daemon children
// are started from one goroutine locked to a thread that never exits.
var lifelineThread struct {
	once sync.Once
	jobs chan func()
}

func onLifelineThread(f func()) {
	lifelineThread.once.Do(func() {
		lifelineThread.jobs = make(chan func())
		go func() {
			runtime.LockOSThread()
			for job := range lifelineThread.jobs {
				job()
			}
		}()
	})
	done := make(chan struct{})
	lifelineThread.jobs <- func() { f(); close(done) }
	<-done
}

func setDeathSignal(attr *syscall.SysProcAttr, sig syscall.Signal) { attr.Pdeathsig = sig }

// Executable is the path that execs this program again: /proc/self/exe,
// which stays right even if the file was renamed or replaced.
func Executable() (string, error) { return "/proc/self/exe", nil }
