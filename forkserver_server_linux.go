package multiprocessing

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/ownfd"
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
	id     uint32
	urgent bool // a start waits for it
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
		s.pending = append(s.pending, fsRequest{peer: peer, id: m.ID, urgent: m.Code == 1})
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
	if r.peer.send(wire.FSMessage{Kind: wire.FSStarted, ID: r.id, Pid: w.pid}, fds...) != nil {
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
	_ = r.peer.send(wire.FSMessage{Kind: wire.FSFailed, ID: r.id, Pid: pid, Code: code})
}

// launchWarm execs a warm child and waits for it to be ready.
func (s *fsServer) launchWarm() {
	token := make([]byte, 16)
	rand.Read(token)
	hello := hex.EncodeToString(token)
	// The child's control socket is its descriptor 3, its bootstrap
	// socket 4; the server keeps the other ends until the ticket goes.
	var proc *os.Process
	var ctlFD, sockFD int
	ctl, err := ownfd.CloexecSocketpair(unix.SOCK_SEQPACKET)
	if err == nil {
		var sock [2]int
		if sock, err = ownfd.CloexecSocketpair(unix.SOCK_STREAM); err != nil {
			unix.Close(ctl[0])
			unix.Close(ctl[1])
		} else {
			proc, err = execChild(s.exe, []int{0, 1, 2, ctl[1], sock[1]}, markerValue(3, hello, roleWarm), 0)
			unix.Close(ctl[1])
			unix.Close(sock[1])
			ctlFD, sockFD = ctl[0], sock[0]
			if err != nil {
				unix.Close(ctlFD)
				unix.Close(sockFD)
			}
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
	// The child is not yet reaped, so this pidfd (the one for its client)
	// cannot refer to another process.
	pid := proc.Pid
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		pidfd = -1
	}
	_ = unix.SetNonblock(ctlFD, true)
	w := &warmChild{
		pid: pid, pidfd: pidfd, proc: proc, sock: sockFD,
		ctl: os.NewFile(uintptr(ctlFD), "warm child"), reaped: make(chan struct{}),
	}
	s.mu.Lock()
	s.children[pid] = w
	s.mu.Unlock()
	go s.reap(w)
	err = fdpass.SendMsg(w.ctl, wire.FSMessage{Kind: wire.FSHello, Data: []byte(hello)}.Encode())
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
	code := exitCode(state, err)
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
	frame, err := wire.EncodeBootstrap(boot)
	if err != nil || sendFrame(ours, frame, []int{ownfd.FD(args.files[0])}) != nil {
		return
	}
	got, err := recvBootstrap(theirs, bootBuffer())
	if err != nil {
		return
	}
	if run, err := t.call(got); err == nil {
		_ = run()
	}
}

func warmUpTarget(f *os.File) error { return f.Close() }

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
// ready, waits on ctl for a parent to start it, with the descriptors of
// its handles, then reads its bootstrap from sock and runs it. It ends
// quietly if its ticket is dropped first (the parent or server ended).
func runWarm(ctl, sock *os.File) int {
	// One P while it waits and starts: a wakeup then takes the one thread
	// there is straight to the target (with more, the runtime hands the
	// goroutine between threads, which costs a start some 300 us on a
	// 2-core VM). The target gets them back at its first pause; see
	// restoreProcs.
	procs := runtime.GOMAXPROCS(1)
	warmUp()
	warmDir, _ = syscall.Getwd()
	buf := bootBuffer()
	// Started, which tells the parent that this child called Init, waits
	// in the socket: written now, it is not a system call of the start.
	_ = wire.WriteFrame(sock, wire.Started())
	// If this fails, the server is gone or gave the ticket before this
	// child was ready, and the bootstrap may be waiting all the same.
	_ = fdpass.SendMsg(ctl, wire.FSMessage{Kind: wire.FSReady}.Encode())
	// The lifeline is watched from now on, so that no goroutine starts
	// (a thread wakeup) between the start's message and the target.
	go warmLifeline(ctl)
	// (No deadline either: its timer would cost the start time, and the
	// read ends if the parent dies.)
	boot, err := recvBootstrap(sock, buf)
	// Its ticket was dropped. (A reset, not the end of the stream: a Unix
	// socket closed with data unread, here the Started frame, resets its
	// peer.)
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "multiprocessing: forkserver child: %v\n", err)
		return 2
	}
	childBoot = boot
	becomeChild(boot)
	close(warmStarted)
	// With one P, this goroutine runs when the target first blocks, or is
	// preempted (10 ms at most), not before.
	go restoreProcs(procs)
	return runBooted(boot, sock)
}

// restoreProcs gives a warm child's target the processors it had before
// runWarm took them, unless the target has set GOMAXPROCS itself, and the
// runtime's automatic setting if that is what it had.
func restoreProcs(procs int) {
	if runtime.GOMAXPROCS(0) != 1 {
		return
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		runtime.GOMAXPROCS(procs)
	} else {
		runtime.SetDefaultGOMAXPROCS()
	}
}

// warmStarted is closed once a warm child has its bootstrap.
var warmStarted = make(chan struct{})

// warmLifeline waits for the end of a warm child's control socket, which
// the holder of its ticket keeps open for the child's life: the parent is
// gone, or it dropped the ticket. In the second case the bootstrap socket
// ends too, and runWarm ends the child; in the first, the bootstrap may
// have come before, and the child runs, without its parent.
func warmLifeline(ctl *os.File) {
	var buf [wire.FSMaxMessage]byte
	for {
		if _, err := ctl.Read(buf[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
	}
	<-warmStarted
	parentGone(childBoot.Daemon)
}

// sendFrame writes frame over sock as wire.WriteFrame does, with fds on
// its first bytes, so that a small bootstrap and its descriptors make one
// message.
func sendFrame(sock *os.File, frame []byte, fds []int) error {
	if len(frame) > wire.MaxFrame {
		return wire.ErrFrameTooLarge
	}
	first := binary.BigEndian.AppendUint32(make([]byte, 0, 4+min(len(frame), firstChunk)), uint32(len(frame)))
	first = append(first, frame[:min(len(frame), firstChunk)]...)
	n, err := fdpass.SendMsgN(sock, first, fds...)
	if err == nil && n < len(first) {
		_, err = sock.Write(first[n:])
	}
	if err == nil && len(frame) > firstChunk {
		_, err = sock.Write(frame[firstChunk:])
	}
	return err
}

// wholeFrame returns the frame that fills data, if data is one whole frame
// (a bootstrap that came in one message, as most do).
func wholeFrame(data []byte) ([]byte, bool) {
	if len(data) < 4 || int(binary.BigEndian.Uint32(data)) != len(data)-4 {
		return nil, false
	}
	return data[4:], true
}

// firstChunk is how much of a bootstrap frame rides with its descriptors.
const firstChunk = 64 << 10

// bootBuffer returns the buffer of a bootstrap's first read, its pages
// touched. A small one: the descriptors come with the first read whatever
// its size. The kernel's copy into a page that was never touched is a page
// fault, some 15 µs on a VM, which a warm child must take before it waits,
// not in the start.
func bootBuffer() []byte {
	buf := make([]byte, 4<<10)
	for i := 0; i < len(buf); i += 1 << 10 {
		buf[i] = 1
	}
	return buf
}

// recvBootstrap reads what sendFrame wrote into buf, then the rest of it:
// the bootstrap and, as its Files, the descriptors that came with it.
func recvBootstrap(sock *os.File, buf []byte) (*wire.Bootstrap, error) {
	n, fds, err := fdpass.RecvMsg(sock, buf)
	if err != nil {
		return nil, err
	}
	var frame []byte
	if whole, ok := wholeFrame(buf[:n]); ok {
		frame = whole
	} else {
		frame, err = wire.ReadFrame(io.MultiReader(bytes.NewReader(buf[:n]), sock))
	}
	if err != nil {
		ownfd.CloseFDs(fds)
		return nil, fmt.Errorf("reading the bootstrap message: %w", err)
	}
	boot, err := wire.DecodeBootstrap(frame)
	if err != nil {
		ownfd.CloseFDs(fds)
		return nil, err
	}
	boot.Files = fds
	return boot, nil
}
