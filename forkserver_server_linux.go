package multiprocessing

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// fsServer is the state of a forkserver process.
type fsServer struct {
	exe      string
	key      []byte
	dir      string
	listener *os.File
	stopOnce sync.Once
	stopping chan struct{}

	mu       sync.Mutex
	ready    []*warmChild // waiting in Init, oldest first
	starting int          // exec'd or being exec'd, not yet ready
	pending  []fsRequest  // starts waiting for a warm child
	// broken is set when a warm child ends before it is ready: the program
	// may not call Init, so children are then started only for requests.
	broken   bool
	children map[int]*warmChild // not yet reaped
}

// warmChild is a child of the server, warm or given to a client.
type warmChild struct {
	pid    int
	pidfd  int // -1 once given away, or on a kernel without pidfds
	proc   *os.Process
	ctl    *os.File // the server's end of the child's socket
	ready  bool
	owner  *fsPeer // the client it runs for
	reaped chan struct{}
}

// fsPeer is a client of the server.
type fsPeer struct {
	conn *os.File
	mu   sync.Mutex // serialises sends
}

func (p *fsPeer) send(m wire.FSMessage, fds ...int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fdpass.SendMsg(p.conn, m.Encode(), fds...)
}

type fsRequest struct {
	peer *fsPeer
	id   uint32
	fds  []int // the child's bootstrap socket, then its handles' descriptors
}

// serveForkserver is the life of a forkserver process: it serves until its
// parent dies (its bootstrap socket reports it, and the parent-death
// signal, SIGTERM, is sent) or it gets SIGTERM or SIGHUP, then removes its
// directory, ends its warm children and returns its exit code. It catches
// SIGINT and ignores it, as Python's forkserver ignores ^C: an interrupt
// from the terminal is its parent's to handle, and the children get the
// default action, which an ignored signal would not give them.
func serveForkserver(lifeline *os.File, boot *wire.ServerBoot) int {
	exe, err := executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiprocessing: forkserver: %v\n", err)
		return 1
	}
	unix.CloseOnExec(boot.Listener)
	s := &fsServer{
		exe: exe, key: boot.Key, dir: boot.Dir,
		listener: adoptPrivate(boot.Listener, "forkserver listener"),
		stopping: make(chan struct{}), children: map[int]*warmChild{},
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		_, _ = io.Copy(io.Discard, lifeline)
		s.stop()
	}()
	go s.accept()
	s.mu.Lock()
	s.refillLocked()
	s.mu.Unlock()
	for {
		select {
		case sig := <-signals:
			if sig != syscall.SIGINT {
				s.stop()
			}
		case <-s.stopping:
			s.cleanup()
			writeCoverage()
			return 0
		}
	}
}

func (s *fsServer) stop() { s.stopOnce.Do(func() { close(s.stopping) }) }

func (s *fsServer) stopped() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// cleanup removes the socket's directory, ends the warm children and reaps
// them. Children given to clients keep running: a daemon among them ends
// with its parent, through its own lifeline, and the others outlive it, as
// in Python.
func (s *fsServer) cleanup() {
	s.listener.Close()
	os.RemoveAll(s.dir)
	s.mu.Lock()
	var warm []*warmChild
	for _, w := range s.children {
		if w.owner == nil {
			_ = w.proc.Kill()
			warm = append(warm, w)
		}
	}
	for _, r := range s.pending {
		closeFDs(r.fds)
	}
	s.pending = nil
	s.mu.Unlock()
	deadline := time.After(5 * time.Second)
	for _, w := range warm {
		select {
		case <-w.reaped:
		case <-deadline:
			return
		}
	}
}

func (s *fsServer) accept() {
	rc, err := s.listener.SyscallConn()
	if err != nil {
		return
	}
	for {
		var fd int
		var aerr error
		err := rc.Read(func(l uintptr) bool {
			fd, _, aerr = unix.Accept4(int(l), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			return aerr != unix.EAGAIN
		})
		switch {
		case err != nil:
			return // the listener is closed
		case aerr == unix.ECONNABORTED || aerr == unix.EINTR:
			continue
		case aerr != nil:
			fmt.Fprintf(os.Stderr, "multiprocessing: forkserver: accept: %v\n", aerr)
			return
		}
		go s.admit(os.NewFile(uintptr(fd), "forkserver client"))
	}
}

// admit serves a connection whose peer runs as this process's user and
// proves the authkey.
func (s *fsServer) admit(conn *os.File) {
	defer conn.Close()
	if err := checkPeer(conn); err != nil {
		_ = fdpass.SendMsg(conn, wire.FSMessage{Kind: wire.FSDenied}.Encode())
		return
	}
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if deliverChallenge(conn, s.key) != nil {
		return
	}
	_ = conn.SetDeadline(time.Time{})
	s.serve(&fsPeer{conn: conn})
}

// checkPeer refuses a peer of another user.
func checkPeer(conn *os.File) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	cerr := rc.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("peer of uid %d", cred.Uid)
	}
	return nil
}

// serve takes a client's requests until it hangs up or breaks the protocol.
func (s *fsServer) serve(peer *fsPeer) {
	for {
		m, fds, err := recvFSFiles(peer.conn)
		if err != nil {
			break
		}
		switch {
		case m.Kind == wire.FSStart && len(fds) > 0:
			s.mu.Lock()
			s.pending = append(s.pending, fsRequest{peer: peer, id: m.ID, fds: fds})
			s.dispatchLocked()
			s.refillLocked()
			s.mu.Unlock()
			continue
		case m.Kind == wire.FSQuery && len(fds) == 0:
			s.mu.Lock()
			n := len(s.ready)
			s.mu.Unlock()
			if peer.send(wire.FSMessage{Kind: wire.FSStatus, ID: m.ID, Code: n}) == nil {
				continue
			}
		}
		closeFDs(fds)
		break
	}
	s.mu.Lock()
	s.pending = slices.DeleteFunc(s.pending, func(r fsRequest) bool {
		if r.peer == peer {
			closeFDs(r.fds)
		}
		return r.peer == peer
	})
	s.mu.Unlock()
}

// dispatchLocked gives waiting requests to ready children. The caller
// holds s.mu.
func (s *fsServer) dispatchLocked() {
	for len(s.pending) > 0 && len(s.ready) > 0 {
		w := s.ready[0]
		s.ready = s.ready[1:]
		r := s.pending[0]
		if fdpass.SendMsg(w.ctl, wire.FSMessage{Kind: wire.FSAssign}.Encode(), r.fds...) != nil {
			continue // it died while ready; reap sees to it
		}
		s.pending = s.pending[1:]
		closeFDs(r.fds)
		w.ctl.Close()
		w.owner = r.peer
		var pidfd []int
		if w.pidfd >= 0 {
			pidfd = append(pidfd, w.pidfd)
		}
		_ = r.peer.send(wire.FSMessage{Kind: wire.FSStarted, ID: r.id, Pid: w.pid}, pidfd...)
		if w.pidfd >= 0 {
			unix.Close(w.pidfd)
			w.pidfd = -1
		}
	}
}

// refillLocked starts warm children until there are enough for the
// waiting requests and warmChildren more. The caller holds s.mu.
func (s *fsServer) refillLocked() {
	if s.stopped() {
		return
	}
	want := len(s.pending) + warmChildren
	if s.broken {
		want = len(s.pending)
	}
	for len(s.ready)+s.starting < want {
		s.starting++
		go s.launchWarm()
	}
}

// failLocked fails the oldest waiting request, if any, with the child pid
// that ended with code before it was ready (pid 0: none could be
// started). The caller holds s.mu.
func (s *fsServer) failLocked(pid, code int) {
	if len(s.pending) == 0 {
		return
	}
	r := s.pending[0]
	s.pending = s.pending[1:]
	closeFDs(r.fds)
	_ = r.peer.send(wire.FSMessage{Kind: wire.FSFailed, ID: r.id, Pid: pid, Code: code})
}

// launchWarm execs a warm child and waits for it to be ready.
func (s *fsServer) launchWarm() {
	pair, err := socketpair(unix.SOCK_SEQPACKET)
	var pid int
	token := make([]byte, 16)
	rand.Read(token)
	hello := hex.EncodeToString(token)
	if err == nil {
		pid, err = execChild(s.exe, []int{0, 1, 2, pair[1]}, markerValue(3, hello, roleWarm), 0)
		unix.Close(pair[1])
		if err != nil {
			unix.Close(pair[0])
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiprocessing: forkserver: starting a child: %v\n", err)
		code := int(syscall.EIO)
		var errno syscall.Errno
		if errors.As(err, &errno) {
			code = int(errno)
		}
		s.mu.Lock()
		s.starting--
		s.failLocked(0, code)
		s.mu.Unlock()
		return
	}
	// The child is ours and not yet reaped, so neither the pidfd nor the
	// one FindProcess opens can refer to another process.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		pidfd = -1
	}
	proc, _ := os.FindProcess(pid)
	_ = unix.SetNonblock(pair[0], true)
	w := &warmChild{pid: pid, pidfd: pidfd, proc: proc, ctl: os.NewFile(uintptr(pair[0]), "warm child"), reaped: make(chan struct{})}
	s.mu.Lock()
	s.children[pid] = w
	s.mu.Unlock()
	go s.reap(w)
	err = fdpass.SendMsg(w.ctl, wire.FSMessage{Kind: wire.FSHello, Data: []byte(hello)}.Encode())
	if err != nil {
		return
	}
	m, err := recvFS(w.ctl)
	if err != nil || m.Kind != wire.FSReady {
		if err == nil {
			_ = w.proc.Kill() // it breaks the protocol
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped() {
		_ = w.proc.Kill()
		return
	}
	s.starting--
	w.ready = true
	s.broken = false
	s.ready = append(s.ready, w)
	s.dispatchLocked()
	s.refillLocked()
}

// reap waits for a child to end and reports its exit code to its client.
func (s *fsServer) reap(w *warmChild) {
	state, err := w.proc.Wait()
	code := exitCode(state, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.children, w.pid)
	switch {
	case w.owner != nil:
		_ = w.owner.send(wire.FSMessage{Kind: wire.FSExit, Pid: w.pid, Code: code})
	case w.ready:
		s.ready = slices.DeleteFunc(s.ready, func(r *warmChild) bool { return r == w })
		w.ctl.Close()
	default:
		s.starting--
		s.broken = true
		s.failLocked(w.pid, code)
		w.ctl.Close()
	}
	if w.pidfd >= 0 {
		unix.Close(w.pidfd)
		w.pidfd = -1
	}
	close(w.reaped)
	s.refillLocked()
}

// readHello checks, in a warm child's init, the server's first message
// against the token of its marker.
func readHello(sock *os.File, token []byte) error {
	m, err := recvFS(sock)
	if err != nil {
		return fmt.Errorf("reading the forkserver's first message: %w", err)
	}
	if m.Kind != wire.FSHello || subtle.ConstantTimeCompare(m.Data, token) != 1 {
		return errors.New("its token does not match the forkserver's first message")
	}
	return nil
}

// runWarm is the life of a warm child from Init: it tells the server it is
// ready, waits for a bootstrap socket and runs what comes over it. It ends
// quietly if the server goes away first.
func runWarm(ctl *os.File) int {
	// Compile the codec of the bootstrap message while nobody waits.
	if frame, err := wire.EncodeBootstrap(&wire.Bootstrap{Target: "warm-up"}); err == nil {
		_, _ = wire.DecodeBootstrap(frame)
	}
	if fdpass.SendMsg(ctl, wire.FSMessage{Kind: wire.FSReady}.Encode()) != nil {
		return 0
	}
	m, fds, err := recvFSFiles(ctl)
	closePrivateFile(ctl)
	if err != nil {
		return 0
	}
	if m.Kind != wire.FSAssign || len(fds) == 0 {
		closeFDs(fds)
		fmt.Fprintf(os.Stderr, "multiprocessing: forkserver child: unexpected message %q\n", m.Kind)
		return 2
	}
	sock := adoptPrivate(fds[0], "bootstrap")
	_ = sock.SetReadDeadline(time.Now().Add(bootstrapTimeout))
	boot, err := readBootstrap(sock, nil)
	if err != nil {
		closeFDs(fds[1:])
		fmt.Fprintf(os.Stderr, "multiprocessing: forkserver child: %v\n", err)
		return 2
	}
	_ = sock.SetReadDeadline(time.Time{})
	boot.Files = fds[1:]
	childBoot, childSock = boot, sock
	return runChild(boot, sock)
}
