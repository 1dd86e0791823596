//go:build unix

package multiprocessing

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/bootstrap"
	"github.com/mpgo/multiprocessing/internal/forkserver"
	"github.com/mpgo/multiprocessing/internal/launch"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// The forkserver start method, Python's popen_forkserver: one server per
// program, started on the first Start and again on the first Start after
// it has died (package forkserver holds the server, its client and its warm
// children). It is built for Linux only, so far: elsewhere Start returns an
// error that matches ErrUnsupported.

var forkserverLauncher launch.Launcher = forkserverMethod{}

type forkserverMethod struct{}

func (forkserverMethod) Launch(boot *wire.Bootstrap, files []*os.File) (launch.Child, error) {
	if !forkserver.Supported {
		return nil, &launch.UnsupportedError{Method: string(Forkserver)}
	}
	c, err := theForkserver.client()
	if err != nil {
		return nil, fmt.Errorf("forkserver: %w", err)
	}
	return c.Launch(boot, files)
}

// theForkserver is the server of the forkserver context.
var theForkserver forkserverSlot

type forkserverSlot struct {
	mu   sync.Mutex
	c    *forkserver.Client
	opts forkserver.Options // the tests' wrong key
}

func (s *forkserverSlot) client() (*forkserver.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil && !s.c.Ended() {
		return s.c, nil
	}
	c, err := forkserver.Start(s.opts)
	if err != nil {
		return nil, err
	}
	s.c = c
	return c, nil
}

func init() { warmHooks.WarmUp = warmUp }

// warmUp runs in a warm child, before it says it is ready, what a start
// will run in it, on a target of its own: a process pays for each page of
// code and memory the first time it touches it, and that must not be the
// start's time.
func warmUp() {
	ours, theirs, err := ownfd.Socketpair(unix.SOCK_STREAM, "warm-up", true, true)
	if err != nil {
		return
	}
	defer ownfd.Close(ours)
	defer ownfd.Close(theirs)
	t, err := newTarget("warm-up", warmUpTarget)
	if err != nil {
		return
	}
	vals, types, err := t.values(warmUpTarget, []any{theirs})
	if err != nil {
		return
	}
	args, err := t.encodeArgs(vals, types)
	if err != nil || len(args.files) != 1 {
		return
	}
	boot := &wire.Bootstrap{Target: t.name, Args: args.gob, ArgKinds: args.kinds, Handles: args.handles, Method: string(Forkserver), Identity: []int{1}}
	if bootstrap.SendFrame(ours, wire.EncodeBootstrap(boot), []int{ownfd.FD(args.files[0])}) != nil {
		return
	}
	got, err := bootstrap.RecvFrame(theirs, bootstrap.Buffer())
	if err != nil {
		return
	}
	if run, err := t.call(got); err == nil {
		_ = run()
	}
}

func warmUpTarget(f *os.File) error { return f.Close() }
