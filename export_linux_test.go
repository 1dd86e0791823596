package multiprocessing

import (
	"os"
	"time"

	"github.com/mpgo/multiprocessing/internal/ownfd"
)

// Hooks into the forkserver for the tests of package multiprocessing_test.

func currentForkserver() *fsClient {
	theForkserver.mu.Lock()
	defer theForkserver.mu.Unlock()
	return theForkserver.c
}

// ForkserverPid returns the pid of the forkserver last started, 0 if none.
func ForkserverPid() int {
	if c := currentForkserver(); c != nil {
		return c.proc.Pid
	}
	return 0
}

// ForkserverDir returns the directory of the forkserver last started.
func ForkserverDir() string {
	if c := currentForkserver(); c != nil {
		return c.dir
	}
	return ""
}

// ForkserverRunning reports whether this process has a forkserver that
// has not ended.
func ForkserverRunning() bool {
	c := currentForkserver()
	return c != nil && !c.ended()
}

// ForkserverWarm returns how many warm children the running forkserver
// has ready for this process.
func ForkserverWarm() (int, error) {
	c, err := theForkserver.client()
	if err != nil {
		return 0, err
	}
	return c.warm(), nil
}

// SetForkserverWrongKey makes the next forkserver's client prove a wrong
// authkey.
func SetForkserverWrongKey(wrong bool) {
	theForkserver.mu.Lock()
	theForkserver.wrongKey = wrong
	theForkserver.mu.Unlock()
}

// ForkserverTicketFDs returns the descriptors of the tickets this process
// holds: each warm child's control socket, bootstrap socket and pidfd.
func ForkserverTicketFDs() []int {
	c := currentForkserver()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var fds []int
	for _, t := range c.tickets {
		fds = append(fds, ownfd.FD(t.ctl), ownfd.FD(t.sock))
		if t.pidfd >= 0 {
			fds = append(fds, t.pidfd)
		}
	}
	return fds
}

// ForkserverPool is how many warm children a process keeps tickets for.
const ForkserverPool = warmChildren

// A test binary started with MPGO_TEST_BOOTSTRAP_TIMEOUT waits that long for
// bootstrap messages (set before the package's init reads one).
var _ = func() bool {
	if d, err := time.ParseDuration(os.Getenv("MPGO_TEST_BOOTSTRAP_TIMEOUT")); err == nil {
		bootstrapTimeout = d
	}
	return true
}()

// RaceEnabled says whether the test binary was built with -race, where a
// child's start costs three times as much.
const RaceEnabled = raceEnabled
