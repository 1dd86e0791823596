//go:build unix

package multiprocessing_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	mp "github.com/mpgo/multiprocessing"
	"github.com/mpgo/multiprocessing/internal/wire"
)

func TestChildSeesParentsArgsDirAndEnvironment(t *testing.T) {
	// A forkserver's children get the environment it started with: the
	// one here starts with this test's, and ends with the test, so that
	// no later child is left with a directory that is gone.
	killForkserver(t)
	t.Setenv("GOCOVERDIR", t.TempDir())
	t.Cleanup(func() {
		// Its warm children write their coverage there as they end, once
		// their tickets are dropped: the directory goes after them.
		for pid := range killForkserver(t) {
			eventually(t, 10*time.Second, func() bool { return gone(pid) }, fmt.Sprintf("forkserver child %d outlived its server", pid))
		}
	})
	// A umask and a limit of open files that no child would have by chance.
	oldMask := syscall.Umask(0o027)
	t.Cleanup(func() { syscall.Umask(oldMask) })
	// (Not RLIMIT_NOFILE: a Go program raises its soft limit at start.)
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_CORE, &lim))
	lower := lim
	lower.Cur = min(lim.Max, 12345)
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_CORE, &lower))
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_CORE, &lim) })
	cwd, err := os.Getwd()
	require.NoError(t, err)
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			r, w := reportPipe(t)
			p, err := run(t, method, describe, w, "hello")
			require.NoError(t, err)
			d := receive(t, r)
			assert.Equal(t, p.Pid(), d.Pid)
			assert.Equal(t, os.Getpid(), d.ParentPid)
			if method == mp.Forkserver {
				// As in Python, the forkserver is the real parent, and the
				// umask and limits are those it started with.
				assert.Equal(t, mp.ForkserverPid(), d.Ppid)
			} else {
				assert.Equal(t, os.Getpid(), d.Ppid)
				assert.Equal(t, 0o027, d.Umask, "umask")
				assert.Equal(t, lower.Cur, d.CoreLimit, "RLIMIT_CORE")
			}
			assert.Equal(t, os.Args, d.Args)
			assert.Equal(t, cwd, d.Cwd)
			assert.False(t, d.HasMarker, "the marker is removed before user code runs, found %q", d.Marker)
			assert.Equal(t, os.Getenv("GOCOVERDIR"), d.CoverDir)
			assert.Equal(t, method, d.Method, "GetStartMethod in a child reports how it was started")
			assert.Equal(t, "hello", d.Text)
		})
	}
}

func TestRegisterNameRunsALiteral(t *testing.T) {
	r, w := reportPipe(t)
	p := mp.NewProcess(namedTarget, w)
	require.NoError(t, p.Start())
	require.NoError(t, p.Join())
	require.NoError(t, r.SetReadDeadline(time.Now().Add(20*time.Second)))
	var got map[string]bool
	require.NoError(t, json.NewDecoder(r).Decode(&got))
	assert.True(t, got["named"])
	// Another literal, never registered, is refused before any process.
	assert.ErrorIs(t, mp.NewProcess(func(*os.File) error { return nil }, w).Start(), mp.ErrNotRegistered)
}

func TestDescriptorInheritance(t *testing.T) {
	f, err := os.Open(os.Args[0])
	require.NoError(t, err)
	defer f.Close()
	rc, err := f.SyscallConn()
	require.NoError(t, err)
	// A number no child would reach by opening descriptors of its own.
	const fd = 200
	syscall.ForkLock.Lock() // (dup2 and the flag: no exec between them)
	require.NoError(t, rc.Control(func(u uintptr) { require.NoError(t, unix.Dup2(int(u), fd)) }))
	syscall.CloseOnExec(fd)
	syscall.ForkLock.Unlock()
	defer syscall.Close(fd)
	devNull, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer devNull.Close()
	nullRC, _ := devNull.SyscallConn()
	var nullIno int
	require.NoError(t, nullRC.Control(func(u uintptr) { nullIno = inode(int(u)) }))

	r, w := reportPipe(t)
	_, err = run(t, mp.Fork, probeFD, w, fd, 0)
	require.NoError(t, err)
	d := receive(t, r)
	assert.Equal(t, inode(fd), d.Extra[0], "fork: an open descriptor keeps its number in the child")
	assert.Equal(t, inode(0), d.Extra[1], "fork: the child shares stdin")

	for _, method := range []mp.StartMethod{mp.Spawn, mp.Forkserver} {
		r, w = reportPipe(t)
		_, err = run(t, method, probeFD, w, fd, 0)
		require.NoError(t, err)
		d = receive(t, r)
		assert.Equal(t, -1, d.Extra[0], "%s: the parent's descriptors are not inherited", method)
		assert.Equal(t, nullIno, d.Extra[1], "%s: stdin is /dev/null", method)
	}
}

func TestFileArgumentReachesTheChild(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			r, w := reportPipe(t)
			// The pipe passes as an *os.File, whatever its number in the child.
			p, err := run(t, method, describe, w, "via pipe")
			require.NoError(t, err)
			assert.Equal(t, "via pipe", receive(t, r).Text)
			require.NoError(t, p.Close())
			// The parent's copy still works after Start.
			_, err = w.Write([]byte("{}"))
			assert.NoError(t, err)
		})
	}
}

func TestMarkerThatDoesNotCheckOutExitsTwo(t *testing.T) {
	regular, err := os.CreateTemp(t.TempDir(), "notasocket")
	require.NoError(t, err)
	defer regular.Close()
	v := strconv.Itoa(wire.Version)
	cases := map[string]struct {
		marker string
		extra  *os.File
		why    string
	}{
		"garbage":       {"garbage", nil, "not VERSION:FD:TOKEN"},
		"wrong version": {"99:3:abcd", nil, `version "99"`},
		"no descriptor": {v + ":77:abcd", nil, "descriptor 77"},
		"not a socket":  {v + ":3:abcd", regular, "not a socket"},
		"stdin":         {v + ":0:abcd", nil, "not a descriptor number"},
		"unknown role":  {v + ":3:abcd:boss", nil, `unknown role "boss"`},
		"server":        {v + ":3:abcd:server", nil, "descriptor 3"},
		"warm, no pair": {v + ":3:abcd:warm", nil, "descriptor 3"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "MPGO_CHILD="+tc.marker, helperSetting("marker"))
			if tc.extra != nil {
				cmd.ExtraFiles = []*os.File{tc.extra}
			}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, string(out))
			assert.Equal(t, 2, exit.ExitCode())
			assert.Contains(t, string(out), "does not check out")
			assert.Contains(t, string(out), tc.why)
			assert.NotContains(t, string(out), "TestMain ran", "none of main runs")
		})
	}
}

// startWithBootstrap runs the test binary as a child whose bootstrap socket
// carries frame, then closes the parent's end.
func startWithBootstrap(t *testing.T, token string, frame []byte) (string, int) {
	t.Helper()
	syscall.ForkLock.Lock()
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(pair[0])
		syscall.CloseOnExec(pair[1])
	}
	syscall.ForkLock.Unlock()
	require.NoError(t, err)
	ours := os.NewFile(uintptr(pair[0]), "parent end")
	theirs := os.NewFile(uintptr(pair[1]), "child end")
	defer ours.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("MPGO_CHILD=%d:3:%s", wire.Version, token), helperSetting("marker"))
	cmd.ExtraFiles = []*os.File{theirs}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	theirs.Close()
	_, err = ours.Write(frame)
	require.NoError(t, err)
	require.NoError(t, ours.Close())
	err = cmd.Wait()
	var exit *exec.ExitError
	if err != nil {
		require.ErrorAs(t, err, &exit)
		return out.String(), exit.ExitCode()
	}
	return out.String(), 0
}

func TestForgedBootstrapExitsTwo(t *testing.T) {
	good := wire.EncodeBootstrap(&wire.Bootstrap{Token: "right", Target: "github.com/mpgo/multiprocessing_test.noop", Name: "forged"})
	var framed bytes.Buffer
	require.NoError(t, wire.WriteFrame(&framed, good))

	out, code := startWithBootstrap(t, "wrong", framed.Bytes())
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "token does not match")
	assert.NotContains(t, out, "TestMain ran")

	out, code = startWithBootstrap(t, "right", framed.Bytes()[:framed.Len()/2])
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "unexpected EOF")

	out, code = startWithBootstrap(t, "right", []byte{0xff, 0xff, 0xff, 0xff, 1, 2})
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "larger than")

	out, code = startWithBootstrap(t, "right", []byte{0, 0, 0, 3, 1, 2, 3})
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "bootstrap message")

	out, code = startWithBootstrap(t, "right", framed.Bytes())
	assert.Equal(t, 0, code, "the genuine message runs the target: %s", out)
	assert.Contains(t, out, "TestMain ran", "the target runs from Init, in TestMain")
}

func TestChildRunsWhenTheBinaryIsDeleted(t *testing.T) {
	self, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	copyPath := filepath.Join(t.TempDir(), "copy.test")
	require.NoError(t, os.WriteFile(copyPath, self, 0o755))
	cmd := exec.Command(copyPath, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperSetting("deleted-binary"), "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "child exit code 5 true")
	assert.NoFileExists(t, copyPath)
}

func TestChildWithoutInitIsReported(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			out, err := helper(t, "noinit", methodEnv+"="+string(method))
			require.NoError(t, err, out)
			assert.Contains(t, out, "start refused: multiprocessing: this process was started as a child but did not call multiprocessing.Init")
			assert.Contains(t, out, "joined: multiprocessing: process Process-1")
			assert.Contains(t, out, "the child did not call multiprocessing.Init")
		})
	}
}

// serverLeftovers is what a helper printed after its children's pids: the
// pid and directory of its forkserver, if it started one.
func serverLeftovers(t *testing.T, pid int, dir string) {
	t.Helper()
	if pid == 0 {
		return
	}
	eventually(t, 2*time.Second, func() bool { return gone(pid) }, "the forkserver outlived its parent")
	eventually(t, 2*time.Second, func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) }, "the forkserver's directory is left")
}

func TestDaemonDiesWhenMainReturns(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			out, err := helper(t, "main-returns", methodEnv+"="+string(method))
			require.NoError(t, err, out)
			var pid, server int
			var dir string
			_, err = fmt.Sscan(out, &pid, &server, &dir)
			require.NoError(t, err, out)
			eventually(t, 2*time.Second, func() bool { return gone(pid) }, "the daemon child outlived its parent")
			serverLeftovers(t, server, dir)
		})
	}
}

// A program that returns prints nothing it did not print itself: not its
// children, not a forkserver's warm children, whose tickets it held.
func TestProgramThatReturnsLeavesNoOutput(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			for range 5 {
				out, err := helper(t, "start-join-return", methodEnv+"="+string(method))
				require.NoError(t, err, out)
				require.Empty(t, out, "what the program, its children and its forkserver printed")
			}
		})
	}
}

func TestParentKilledTakesDaemonsButNotOthers(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperSetting("killed-parent"), methodEnv+"="+string(method))
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			var daemon, other, server int
			var dir string
			_, err = fmt.Fscan(stdout, &daemon, &other, &server, &dir)
			require.NoError(t, err)
			defer syscall.Kill(other, syscall.SIGKILL)
			require.NoError(t, cmd.Process.Kill())
			_ = cmd.Wait()
			eventually(t, 2*time.Second, func() bool { return gone(daemon) }, "the daemon child outlived its parent killed with SIGKILL")
			serverLeftovers(t, server, dir)
			assert.False(t, gone(other), "a non-daemon child keeps running when its parent dies")
		})
	}
}

func TestNonDaemonOutlivesItsParentAndSeesItGo(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			r, w := reportPipe(t)
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			p := ctx.Process(outliveParent, w)
			require.NoError(t, p.Start())
			dec := receive(t, r)
			require.NoError(t, p.Kill())
			_ = p.Join()
			d := receive(t, r)
			assert.Equal(t, dec.Pid, d.Pid)
			assert.Equal(t, "parent died, still alive", d.Text)
			assert.False(t, d.Daemon, "ParentProcess().IsAlive() is false once Done is closed")
			assert.Empty(t, d.CurrentJoin, "ParentProcess().Join() returns once the parent is dead")
			eventually(t, 10*time.Second, func() bool { return gone(d.Pid) }, "the grandchild ends after reporting")
		})
	}
}

func TestCoverageCountsChildren(t *testing.T) {
	if testing.CoverMode() == "" {
		t.Skip("the test binary was not built with -cover")
	}
	dir := t.TempDir()
	t.Setenv("GOCOVERDIR", dir)
	p, err := run(t, mp.Spawn, noop)
	require.NoError(t, err)
	counters, err := filepath.Glob(filepath.Join(dir, "covcounters.*."+strconv.Itoa(p.Pid())+".*"))
	require.NoError(t, err)
	assert.Len(t, counters, 1, "the child wrote its coverage counters")
}
