package forkserver

import (
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

	"github.com/mpgo/multiprocessing/internal/bootstrap"
	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/proc"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// handshakeTimeout bounds each step of the authkey challenge once the
// server runs.
const handshakeTimeout = 10 * time.Second

// fsServer is the state of a forkserver process.
type fsServer struct {
	exe      string
	key      []byte
	dir      string
	listener *os.File
	stopOnce sync.Once
	stopping chan struct{}

	mu       sync.Mutex
	ready    []*warmChild       // waiting in Init without a client, oldest first
	starting int                // exec'd or being exec'd, not yet ready
	pending  []fsRequest        // clients waiting for a ticket
	children map[int]*warmChild // not yet reaped
}

// warmChild is a child of the server, warm or given to a client.
type warmChild struct {
	pid    int
	pidfd  int // -1 once given away, or on a kernel without pidfds
	proc   *os.Process
	ctl    *os.File // the other end of its control socket, until its ticket goes
	sock   int      // the other end of its bootstrap socket, until its ticket goes
	ready  bool     // no longer starting: waiting in Init, or given early
	owner  *fsPeer  // the client that has its ticket
	reaped chan struct{}
}

// release closes the server's ends of the child's sockets and its pidfd.
func (w *warmChild) release() {
	if w.ctl != nil {
		w.ctl.Close()
		unix.Close(w.sock)
		w.ctl = nil
	}
	if w.pidfd >= 0 {
		unix.Close(w.pidfd)
		w.pidfd = -1
	}
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
	peer   *fsPeer
	urgent bool // a start waits for it
}

// Serve is the life of a forkserver process: it serves until its
// parent dies (its bootstrap socket reports it, and the parent-death
// signal, SIGTERM, is sent) or it gets SIGTERM or SIGHUP, then removes its
// directory, ends its warm children and returns its exit code. It catches
// SIGINT and ignores it, as Python's forkserver ignores ^C: an interrupt
// from the terminal is its parent's to handle, and the children get the
// default action, which an ignored signal would not give them.
func Serve(lifeline *os.File, boot *wire.ServerBoot) int {
	exe, err := proc.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiprocessing: forkserver: %v\n", err)
		return 1
	}
	unix.CloseOnExec(boot.Listener)
	s := &fsServer{
		exe: exe, key: boot.Key, dir: boot.Dir,
		listener: ownfd.Adopt(boot.Listener, "forkserver listener", true),
		stopping: make(chan struct{}), children: map[int]*warmChild{},
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		_, _ = io.Copy(io.Discard, lifeline)
		s.stop()
	}()
	go s.accept()
	for {
		select {
		case sig := <-signals:
			if sig != syscall.SIGINT {
				s.stop()
			}
		case <-s.stopping:
			s.cleanup()
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

// serve takes a client's requests for tickets until it hangs up or breaks
// the protocol.
func (s *fsServer) serve(peer *fsPeer) {
	for {
		m, err := recvFS(peer.conn)
		if err != nil || m.Kind != wire.FSStart {
			break
		}
		s.mu.Lock()
		s.pending = append(s.pending, fsRequest{peer: peer, urgent: m.Code == wire.FSUrgent})
		s.dispatchLocked()
		s.refillLocked()
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.pending = slices.DeleteFunc(s.pending, func(r fsRequest) bool { return r.peer == peer })
	s.mu.Unlock()
}

// dispatchLocked gives waiting clients the tickets of ready children: a
// child's pid, a pidfd of it and the server's end of its socket, which
// the server closes. The caller holds s.mu.
func (s *fsServer) dispatchLocked() {
	for len(s.pending) > 0 && len(s.ready) > 0 {
		r := s.pending[0]
		s.pending = s.pending[1:]
		if s.ticketLocked(s.ready[0], r) {
			s.ready = s.ready[1:]
		}
	}
}

// ticketLocked sends r's client the ticket of w, and reports whether it
// went. The caller holds s.mu.
func (s *fsServer) ticketLocked(w *warmChild, r fsRequest) bool {
	fds := []int{ownfd.FD(w.ctl), w.sock}
	if w.pidfd >= 0 {
		fds = append(fds, w.pidfd)
	}
	if r.peer.send(wire.FSMessage{Kind: wire.FSStarted, Pid: w.pid}, fds...) != nil {
		return false // the client is gone; the child waits for another
	}
	w.owner = r.peer
	w.release()
	return true
}

// giveEarlyLocked gives w, just exec'd, to the oldest request a start
// waits for, if there is one, and reports whether it did. Such a start
// need not wait for the child to be ready: its bootstrap waits in the
// socket until the child reads it, and meanwhile the start returns, as
// under spawn (starts in a row would otherwise wait for each child's
// initialisation in turn). The caller holds s.mu.
func (s *fsServer) giveEarlyLocked(w *warmChild) bool {
	i := slices.IndexFunc(s.pending, func(r fsRequest) bool { return r.urgent })
	if i < 0 {
		return false
	}
	r := s.pending[i]
	s.pending = slices.Delete(s.pending, i, i+1)
	if !s.ticketLocked(w, r) {
		return false
	}
	s.starting--
	w.ready = true
	return true
}

// refillLocked starts a warm child for each waiting request that no ready
// or starting child will serve. The caller holds s.mu.
func (s *fsServer) refillLocked() {
	if s.stopped() {
		return
	}
	for len(s.ready)+s.starting < len(s.pending) {
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
	_ = r.peer.send(wire.FSMessage{Kind: wire.FSFailed, Pid: pid, Code: code})
}

// launchWarm execs a warm child and waits for it to be ready.
func (s *fsServer) launchWarm() {
	hello := bootstrap.NewToken()
	w, err := s.execWarm(hello)
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
	s.mu.Lock()
	s.children[w.pid] = w
	s.mu.Unlock()
	go s.reap(w)
	s.awaitReady(w, hello)
}

// execWarm execs a warm child whose marker carries hello. Its control
// socket is its descriptor 3, its bootstrap socket 4; the server keeps the
// other ends until the ticket goes.
func (s *fsServer) execWarm(hello string) (*warmChild, error) {
	ctl, err := ownfd.CloexecSocketpair(unix.SOCK_SEQPACKET)
	if err != nil {
		return nil, err
	}
	sock, err := ownfd.CloexecSocketpair(unix.SOCK_STREAM)
	if err != nil {
		unix.Close(ctl[0])
		unix.Close(ctl[1])
		return nil, err
	}
	p, err := proc.Exec(s.exe, []int{0, 1, 2, ctl[1], sock[1]}, bootstrap.MarkerValue(3, hello, bootstrap.RoleWarm), 0)
	unix.Close(ctl[1])
	unix.Close(sock[1])
	if err != nil {
		unix.Close(ctl[0])
		unix.Close(sock[0])
		return nil, err
	}
	// The child is not yet reaped, so this pidfd (the one for its client)
	// cannot refer to another process.
	pidfd, err := unix.PidfdOpen(p.Pid, 0)
	if err != nil {
		pidfd = -1
	}
	_ = unix.SetNonblock(ctl[0], true)
	return &warmChild{
		pid: p.Pid, pidfd: pidfd, proc: p, sock: sock[0],
		ctl: os.NewFile(uintptr(ctl[0]), "warm child"), reaped: make(chan struct{}),
	}, nil
}

// awaitReady greets w, just exec'd, and gives it to a waiting start at
// once or once it says it is ready.
func (s *fsServer) awaitReady(w *warmChild, hello string) {
	err := fdpass.SendMsg(w.ctl, wire.FSMessage{Kind: wire.FSHello, Data: []byte(hello)}.Encode())
	if err != nil {
		return
	}
	s.mu.Lock()
	early := s.giveEarlyLocked(w)
	s.mu.Unlock()
	if early {
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
	if _, alive := s.children[w.pid]; !alive {
		return // it died since, and reap counted it
	}
	if s.stopped() {
		_ = w.proc.Kill()
		return
	}
	s.starting--
	w.ready = true
	s.ready = append(s.ready, w)
	s.dispatchLocked()
}

// reap waits for a child to end and reports its exit code to its client.
func (s *fsServer) reap(w *warmChild) {
	state, err := w.proc.Wait()
	code := proc.ExitCode(state, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.children, w.pid)
	switch {
	case w.owner != nil:
		_ = w.owner.send(wire.FSMessage{Kind: wire.FSExit, Pid: w.pid, Code: code})
	case w.ready:
		s.ready = slices.DeleteFunc(s.ready, func(r *warmChild) bool { return r == w })
	default:
		// The program may not call Init: each request gets one child that
		// fails, as each start under spawn would, and no more.
		s.starting--
		s.failLocked(w.pid, code)
	}
	w.release()
	close(w.reaped)
	s.refillLocked()
}
