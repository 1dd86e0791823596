//go:build linux

package multiprocessing_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

func init() {
	mp.Register(failAfterRead)
	mp.Register(reportProcs)
}

// reportProcs reports GOMAXPROCS once it is more than one, or after 5 s:
// a warm child waits with one P and its target gets the rest back at its
// first pause.
func reportProcs(w *os.File) error {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.GOMAXPROCS(0) == 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return send(w, description{Extra: []int{runtime.GOMAXPROCS(0)}})
}

// failAfterRead waits for a byte on in, then fails.
func failAfterRead(in *os.File) error {
	var b [1]byte
	_, _ = in.Read(b[:])
	return errors.New("told to fail")
}

func forkserverContext(t *testing.T) *mp.Context {
	t.Helper()
	ctx, err := mp.GetContext(mp.Forkserver)
	require.NoError(t, err)
	return ctx
}

// runningForkserver makes sure a forkserver runs and returns its pid.
func runningForkserver(t *testing.T) int {
	t.Helper()
	_, err := run(t, mp.Forkserver, noop)
	require.NoError(t, err)
	return mp.ForkserverPid()
}

func TestForkserverStartIsServedByAWarmChild(t *testing.T) {
	server := runningForkserver(t)
	eventually(t, 20*time.Second, func() bool {
		n, err := mp.ForkserverWarm()
		return err == nil && n >= 1
	}, "the forkserver has no warm child ready")
	before := childrenOf(t, server)

	r, w := reportPipe(t)
	p := forkserverContext(t).Process(describe, w, "warm")
	require.NoError(t, p.Start())
	assert.True(t, before[p.Pid()], "the child %d existed before Start (the server's children were %v)", p.Pid(), before)
	d := receive(t, r)
	require.NoError(t, p.Join())
	assert.Equal(t, p.Pid(), d.Pid)
	assert.Equal(t, server, d.Ppid, "the forkserver is the child's real parent")
	assert.Equal(t, os.Getpid(), d.ParentPid, "ParentProcess is the process that started it")
	assert.Equal(t, "MainProcess", d.ParentName)
	assert.Equal(t, mp.Forkserver, d.Method)
	assert.Equal(t, "warm", d.Text)
	assert.Equal(t, server, mp.ForkserverPid(), "one server serves every start")
}

func TestForkserverChildEntersTheParentsDirectory(t *testing.T) {
	runningForkserver(t)
	dir := t.TempDir()
	t.Chdir(dir)
	r, w := reportPipe(t)
	_, err := run(t, mp.Forkserver, describe, w, "")
	require.NoError(t, err)
	assert.Equal(t, dir, receive(t, r).Cwd, "the child works where its parent did at Start, not where the server started")
}

func TestForkserverWrongAuthkey(t *testing.T) {
	killForkserver(t)
	leftBefore := forkserverDirs(t)
	mp.SetForkserverWrongKey(true)
	err := forkserverContext(t).Process(noop).Start()
	mp.SetForkserverWrongKey(false)
	require.ErrorIs(t, err, mp.ErrAuthentication)
	assert.Contains(t, err.Error(), "refused our authkey")
	eventually(t, 5*time.Second, func() bool { return len(forkserverDirs(t)) <= len(leftBefore) }, "the refused server left its directory")

	_, err = run(t, mp.Forkserver, noop)
	assert.NoError(t, err, "with the right key, the next start works")
}

func forkserverDirs(t *testing.T) []string {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "mpgo-forkserver-*"))
	require.NoError(t, err)
	return dirs
}

func TestForkserverSocketIsPrivate(t *testing.T) {
	runningForkserver(t)
	dir := mp.ForkserverDir()
	info, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o700, info.Mode(), "the socket's directory is private")
	sock, err := os.Stat(filepath.Join(dir, "socket"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket, sock.Mode()&os.ModeType)
}

func TestForkserverKilledWhileChildrenRun(t *testing.T) {
	ctx := forkserverContext(t)
	runningForkserver(t)
	in, tell, err := os.Pipe()
	require.NoError(t, err)
	defer in.Close()
	defer tell.Close()
	failing := ctx.Process(failAfterRead, in)
	require.NoError(t, failing.Start())
	killed := ctx.Process(sleepForever)
	require.NoError(t, killed.Start())

	old := mp.ForkserverPid()
	killForkserver(t)
	assert.True(t, failing.IsAlive(), "the children outlive their server")

	_, err = run(t, mp.Forkserver, noop)
	require.NoError(t, err, "the next start starts another server")
	assert.NotEqual(t, old, mp.ForkserverPid())

	_, err = tell.Write([]byte{1})
	require.NoError(t, err)
	var exit *mp.ExitError
	require.ErrorAs(t, failing.JoinTimeout(20*time.Second), &exit)
	assert.Equal(t, 1, exit.Code, "the code the child reported itself")
	assert.Equal(t, "told to fail", exit.Message)

	require.NoError(t, killed.Kill(), "a signal reaches the child through its pidfd")
	require.ErrorAs(t, killed.JoinTimeout(20*time.Second), &exit)
	assert.Equal(t, 255, exit.Code, "a code nobody could see is 255, as in Python")
}

func TestForkserverChildGetsItsProcessorsBack(t *testing.T) {
	if runtime.GOMAXPROCS(0) == 1 {
		t.Skip("one processor here: nothing to give back")
	}
	runningForkserver(t)
	settle(t, mp.Forkserver) // a warm child, waiting with one P
	r, w := reportPipe(t)
	_, err := run(t, mp.Forkserver, reportProcs, w)
	require.NoError(t, err)
	assert.Equal(t, runtime.GOMAXPROCS(0), receive(t, r).Extra[0])
}

// The server's bootstrap socket is its lifeline: the deadline of the
// bootstrap's read must not end it (a bug once: every server ended 30 s
// after it started).
func TestForkserverOutlivesTheBootstrapDeadline(t *testing.T) {
	killForkserver(t)
	t.Setenv("MPGO_TEST_BOOTSTRAP_TIMEOUT", "200ms")
	server := runningForkserver(t)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		require.False(t, gone(server), "the forkserver ended")
		time.Sleep(20 * time.Millisecond)
	}
	_, err := run(t, mp.Forkserver, noop)
	require.NoError(t, err)
	assert.Equal(t, server, mp.ForkserverPid())
	killForkserver(t) // the next tests get a server with the usual deadline
}

func TestForkserverIgnoresSIGINT(t *testing.T) {
	server := runningForkserver(t)
	require.NoError(t, syscall.Kill(server, syscall.SIGINT))
	// A process handles a signal before it runs anything else, and the
	// server has to run to serve these.
	for range 3 {
		_, err := run(t, mp.Forkserver, noop)
		require.NoError(t, err)
	}
	assert.False(t, gone(server), "an interrupt is the parent's to handle, as in Python")
	assert.Equal(t, server, mp.ForkserverPid())

	p := forkserverContext(t).Process(sleepForever)
	require.NoError(t, p.Start())
	require.NoError(t, p.Interrupt())
	_ = p.JoinTimeout(20 * time.Second)
	code, done := p.ExitCode()
	assert.True(t, done)
	assert.Equal(t, -int(syscall.SIGINT), code, "the server's children get SIGINT's default action")
}

// A Process need not be closed: Join releases the descriptors of a
// forkserver child (its sockets and its pidfd) in the parent.
func TestForkserverJoinReleasesDescriptors(t *testing.T) {
	runningForkserver(t)
	settle(t, mp.Forkserver)
	before := countFDs(t)
	for range 30 {
		_, err := run(t, mp.Forkserver, noop)
		require.NoError(t, err)
	}
	settle(t, mp.Forkserver)
	assert.LessOrEqual(t, countFDs(t), before)
}

func TestForkserverServesConcurrentStarts(t *testing.T) {
	ctx := forkserverContext(t)
	ps := make([]*mp.Process, 20)
	for i := range ps {
		ps[i] = ctx.Process(exitWith, i)
		require.NoError(t, ps[i].Start())
	}
	for i, p := range ps {
		_ = p.JoinTimeout(30 * time.Second)
		code, done := p.ExitCode()
		require.True(t, done)
		assert.Equal(t, i, code)
	}
}

// A process of another user that reaches the socket (here by opening the
// private directory up, as root) is refused before any challenge.
func TestForkserverRefusesOtherUsers(t *testing.T) {
	helper := helperSetting("dial-forkserver") // (used, even when skipped)
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a process as another user")
	}
	runningForkserver(t)
	dir := mp.ForkserverDir()
	sock := filepath.Join(dir, "socket")
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(sock, 0o777))
	defer os.Chmod(dir, 0o700)
	// A copy of this binary that the other user can run.
	open, err := os.MkdirTemp("", "mpgo-test-")
	require.NoError(t, err)
	defer os.RemoveAll(open)
	require.NoError(t, os.Chmod(open, 0o755))
	self, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	bin := filepath.Join(open, "copy.test")
	require.NoError(t, os.WriteFile(bin, self, 0o755))

	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{helper, "MP_TEST_SOCKET=" + sock, "GORACE=atexit_sleep_ms=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr // (a -cover binary warns there of its missing GOCOVERDIR)
	out, err := cmd.Output()
	require.NoError(t, err, "%s%s", out, stderr.String())
	assert.Equal(t, "D", strings.TrimSpace(string(out)), "the server denies the connection instead of challenging it")

	_, err = run(t, mp.Forkserver, noop)
	assert.NoError(t, err, "and goes on serving its parent")
}

func init() {
	// Connects to the forkserver socket MP_TEST_SOCKET and prints the kind
	// of the first message, or EOF.
	registerHelper("dial-forkserver", func() int {
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0)
		if err == nil {
			err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: os.Getenv("MP_TEST_SOCKET")})
		}
		if err != nil {
			fmt.Println(err)
			return 1
		}
		buf := make([]byte, 100)
		n, _ := syscall.Read(fd, buf)
		if n <= 0 {
			fmt.Println("EOF")
		} else {
			fmt.Println(string(buf[:1]))
		}
		return 0
	})
}

// TestForkChildGetsNoTicket starts a fork-method child while the parent
// holds forkserver tickets: the child inherits every descriptor of the
// parent but the library's own, and a ticket's sockets and pidfd are the
// library's own from the moment they arrive. (pidfds have an inode per
// process on pidfs, so the child's descriptor at a ticket's number is told
// apart from the ticket's.)
func TestForkChildGetsNoTicket(t *testing.T) {
	_, err := run(t, mp.Forkserver, noop)
	require.NoError(t, err)
	settle(t, mp.Forkserver)
	fds := mp.ForkserverTicketFDs()
	require.Len(t, fds, 3*mp.ForkserverPool, "each ticket: two sockets and a pidfd")
	args := []any{nil}
	var inodes []int
	for _, fd := range fds {
		args = append(args, fd)
		inodes = append(inodes, inode(fd))
	}
	r, w := reportPipe(t)
	args[0] = w
	_, err = run(t, mp.Fork, probeFD, args...)
	require.NoError(t, err)
	d := receive(t, r)
	require.Len(t, d.Extra, len(fds))
	for i, fd := range fds {
		assert.NotEqual(t, inodes[i], d.Extra[i], "the fork child holds ticket descriptor %d", fd)
	}
}
