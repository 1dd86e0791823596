package multiprocessing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// The forkserver start method. Go cannot fork a running program, so the
// server does what Python's forkserver is for, a start that costs a
// message instead of an exec, another way: it keeps warm children, the
// program exec'd and initialised up to Init, each waiting on a bootstrap
// socket made with it. The server hands each to its client ahead of need
// as a ticket: the child's pid, a pidfd, the other end of its bootstrap
// socket and of its control socket. A Start takes a ticket and writes the
// bootstrap over the bootstrap socket, with the descriptors of the
// handles on its first bytes: one message, one wakeup, from the parent to
// the child. The child reports over that socket, as under spawn; the
// control socket, which the parent keeps open while the child lives, is
// the child's lifeline. The client asks for a new ticket for each it
// takes, so that warmChildren stay ready.
//
// The server is the program exec'd in server mode: it runs in the
// package's init function, so none of the user's init functions runs in
// it. It is the real parent of the children (os.Getppid in a child is the
// server, as in Python): it reaps them and reports their exit codes to the
// process that holds their tickets.

// warmChildren is how many initialised children a client keeps tickets
// for beyond the starts that wait for one.
const warmChildren = 2

// refillDelay is how long after a start its ticket's replacement is asked
// for.
const refillDelay = time.Millisecond

// handshakeTimeout bounds each step of the authkey challenge once the
// server runs.
const handshakeTimeout = 10 * time.Second

var (
	forkserverLauncher launcher = forkserverMethod{}
	platformMethods             = []StartMethod{Fork, Spawn, Forkserver}
)

type forkserverMethod struct{}

func (forkserverMethod) launch(boot *wire.Bootstrap, files []*os.File) (popen, error) {
	c, err := theForkserver.client()
	if err != nil {
		return nil, fmt.Errorf("forkserver: %w", err)
	}
	return c.start(boot, files)
}

// theForkserver is the server of the forkserver context, started on its
// first Start and again on the first Start after it has died.
var theForkserver forkserverSlot

type forkserverSlot struct {
	mu sync.Mutex
	c  *fsClient
	// wrongKey makes the next server's client prove a key other than the
	// server's: tests of authentication.
	wrongKey bool
}

func (s *forkserverSlot) client() (*fsClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil && !s.c.ended() {
		return s.c, nil
	}
	c, err := startForkserver(s.wrongKey)
	if err != nil {
		return nil, err
	}
	s.c = c
	return c, nil
}

// fsClient is this process's connection to its forkserver.
type fsClient struct {
	proc     *os.Process
	dir      string   // the private directory of its socket
	conn     *os.File // authenticated, sequenced packets
	lifeline *os.File // the server's bootstrap socket: it ends when this closes
	writeMu  sync.Mutex

	mu      sync.Mutex
	tickets []fsTicket       // not yet taken, oldest first
	takers  []chan fsTicket  // starts waiting for a ticket, oldest first
	exits   map[int]chan int // children not yet reported ended
	enders  map[int]func()   // their waiters to start when they are
	dead    chan struct{}    // closed once the connection is lost
	exited  chan struct{}    // closed once the server is reaped
}

// fsTicket is a warm child handed to this process, or the failure of one.
type fsTicket struct {
	pid   int
	ctl   *os.File // its control socket, its lifeline once started; nil for a failure
	sock  *os.File // our end of its bootstrap socket, which it waits on
	pidfd int      // -1 if the server sent none
	exit  chan int // where its exit code will come
	// A failure: the child pid ended with code before it was ready, or,
	// with pid 0, none could be started (code: errno).
	failed bool
	code   int
}

func (t fsTicket) discard() {
	if t.ctl != nil {
		ownfd.Close(t.ctl)
	}
	if t.sock != nil {
		ownfd.Close(t.sock)
	}
	if t.pidfd >= 0 {
		ownfd.CloseFDs([]int{t.pidfd})
	}
}

// ended reports whether the server is known to be gone: its connection
// lost, or the process reaped (whichever this process notices first).
func (c *fsClient) ended() bool {
	select {
	case <-c.dead:
		return true
	case <-c.exited:
		return true
	default:
		return false
	}
}

// startForkserver starts a server, connects to it and proves the authkey.
func startForkserver(wrongKey bool) (*fsClient, error) {
	exe, err := executable()
	if err != nil {
		return nil, err
	}
	key := make([]byte, wire.FSNonce)
	rand.Read(key)
	dir, err := os.MkdirTemp("", "mpgo-forkserver-")
	if err != nil {
		return nil, err
	}
	addr := filepath.Join(dir, "socket")
	c, err := execForkserver(exe, dir, addr, key)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.dir = dir
	go func() {
		_, _ = c.proc.Wait()
		// A server that was killed could not clean up after itself.
		os.RemoveAll(dir)
		ownfd.Close(c.lifeline)
		close(c.exited)
	}()
	if wrongKey {
		key = append([]byte(nil), key...)
		key[0] ^= 1
	}
	c.conn, err = dialForkserver(addr, key)
	if err != nil {
		_ = c.proc.Kill()
		<-c.exited
		return nil, err
	}
	go c.read()
	for range warmChildren {
		if err := c.ask(false); err != nil {
			_ = c.proc.Kill()
			return nil, err
		}
	}
	return c, nil
}

// execForkserver execs the server with the listening socket of addr and
// sends it its bootstrap message. It is started as a daemon: it gets
// SIGTERM when this process dies, and it also ends when its bootstrap
// socket reports this process gone.
func execForkserver(exe, dir, addr string, key []byte) (*fsClient, error) {
	ours, theirs, err := ownfd.Socketpair(unix.SOCK_STREAM, "forkserver bootstrap", true, true)
	if err != nil {
		return nil, err
	}
	defer ownfd.Close(theirs)
	listener, err := ownfd.Listen(addr)
	if err != nil {
		ownfd.Close(ours)
		return nil, err
	}
	defer ownfd.Close(listener)
	token := make([]byte, 16)
	rand.Read(token)
	boot := &wire.ServerBoot{Token: hex.EncodeToString(token), Key: key, Dir: dir, Listener: 4, ParentPid: os.Getpid()}
	var proc *os.Process
	err = spawnDescriptors(func(table []int) error {
		table = append(table, ownfd.FD(theirs), ownfd.FD(listener))
		var err error
		proc, err = execChild(exe, table, markerValue(3, boot.Token, roleServer), syscall.SIGTERM)
		return err
	})
	if err != nil {
		ownfd.Close(ours)
		return nil, fmt.Errorf("exec %s: %w", exe, err)
	}
	c := &fsClient{
		proc: proc, lifeline: ours, exits: map[int]chan int{}, enders: map[int]func(){},
		dead: make(chan struct{}), exited: make(chan struct{}),
	}
	frame, err := wire.EncodeServerBoot(boot)
	if err == nil {
		err = wire.WriteFrame(ours, frame)
	}
	if err != nil {
		_ = proc.Kill()
		_, _ = proc.Wait()
		ownfd.Close(ours)
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return c, nil
}

// dialForkserver connects to the server at addr and runs the authkey
// challenge in both directions: the server proves key to us and we to it.
func dialForkserver(addr string, key []byte) (*os.File, error) {
	conn, err := ownfd.Dial(addr, "forkserver")
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	// The first message waits for the server's exec; bootstrapTimeout is
	// what a child allows for the same.
	_ = conn.SetDeadline(time.Now().Add(bootstrapTimeout))
	if err := answerChallenge(conn, key); err != nil {
		ownfd.Close(conn)
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// The two sides of the challenge sign different labels, so that neither
// side's proof can be replayed as the other's.
var (
	clientLabel = []byte("mpgo forkserver client")
	serverLabel = []byte("mpgo forkserver server")
)

func mac(key, label, nonce []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(label)
	h.Write(nonce)
	return h.Sum(nil)
}

// answerChallenge is the client's side of the handshake.
func answerChallenge(conn *os.File, key []byte) error {
	m, err := recvFS(conn)
	if err != nil {
		return fmt.Errorf("waiting for the server's challenge: %w", err)
	}
	if m.Kind == wire.FSDenied {
		return fmt.Errorf("%w: the forkserver refused this connection", ErrAuthentication)
	}
	if m.Kind != wire.FSChallenge {
		return fmt.Errorf("%w: the forkserver sent %q instead of a challenge", ErrAuthentication, m.Kind)
	}
	nonce := make([]byte, wire.FSNonce)
	rand.Read(nonce)
	answer := append(mac(key, clientLabel, m.Data), nonce...)
	if err := fdpass.SendMsg(conn, wire.FSMessage{Kind: wire.FSAnswer, Data: answer}.Encode()); err != nil {
		return err
	}
	m, err = recvFS(conn)
	switch {
	case errors.Is(err, io.EOF) || err == nil && m.Kind == wire.FSDenied:
		return fmt.Errorf("%w: the forkserver refused our authkey", ErrAuthentication)
	case err != nil:
		return err
	case m.Kind != wire.FSProof || !hmac.Equal(m.Data, mac(key, serverLabel, nonce)):
		return fmt.Errorf("%w: the forkserver did not prove it has the authkey", ErrAuthentication)
	}
	return nil
}

// deliverChallenge is the server's side of the handshake.
func deliverChallenge(conn *os.File, key []byte) error {
	nonce := make([]byte, wire.FSNonce)
	rand.Read(nonce)
	if err := fdpass.SendMsg(conn, wire.FSMessage{Kind: wire.FSChallenge, Data: nonce}.Encode()); err != nil {
		return err
	}
	m, err := recvFS(conn)
	if err != nil {
		return err
	}
	if m.Kind != wire.FSAnswer || !hmac.Equal(m.Data[:wire.FSNonce], mac(key, clientLabel, nonce)) {
		_ = fdpass.SendMsg(conn, wire.FSMessage{Kind: wire.FSDenied}.Encode())
		return ErrAuthentication
	}
	proof := mac(key, serverLabel, m.Data[wire.FSNonce:])
	return fdpass.SendMsg(conn, wire.FSMessage{Kind: wire.FSProof, Data: proof}.Encode())
}

// recvFS receives one message that carries no descriptors.
func recvFS(conn *os.File) (wire.FSMessage, error) {
	m, fds, err := recvFSFiles(conn)
	if err == nil && len(fds) > 0 {
		ownfd.CloseFDs(fds)
		return m, fmt.Errorf("forkserver message %q with %d unexpected descriptors", m.Kind, len(fds))
	}
	return m, err
}

func recvFSFiles(conn *os.File) (wire.FSMessage, []int, error) {
	buf := make([]byte, wire.FSMaxMessage+1)
	n, fds, err := ownfd.Recv(conn, buf)
	if err != nil {
		return wire.FSMessage{}, nil, err
	}
	m, err := wire.ParseFS(buf[:n])
	if err != nil {
		ownfd.CloseFDs(fds)
		return m, nil, err
	}
	return m, fds, nil
}

// read dispatches what the server says until the connection ends.
func (c *fsClient) read() {
	for {
		m, fds, err := recvFSFiles(c.conn)
		if err != nil || !c.dispatch(m, fds) {
			break // a server that breaks the protocol is not to be trusted
		}
	}
	c.mu.Lock()
	close(c.dead)
	for _, t := range c.tickets {
		t.discard() // the warm child ends when its socket does
	}
	c.tickets = nil
	for _, start := range c.enders {
		go start() // to read their children's reports themselves
	}
	clear(c.enders)
	c.mu.Unlock()
	ownfd.Close(c.conn)
	// A server that can no longer be reached is no use: the next Start
	// starts another.
	_ = c.proc.Kill()
}

// dispatch hands m to whoever waits for it.
func (c *fsClient) dispatch(m wire.FSMessage, fds []int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case m.Kind == wire.FSStarted && (len(fds) == 2 || len(fds) == 3):
		t := fsTicket{
			pid: m.Pid, pidfd: -1, exit: make(chan int, 1),
			ctl: ownfd.Adopt(fds[0], "warm child", false), sock: ownfd.Adopt(fds[1], "bootstrap", false),
		}
		if len(fds) == 3 {
			t.pidfd = fds[2]
		}
		c.exits[m.Pid] = t.exit
		c.give(t)
	case m.Kind == wire.FSFailed && len(fds) == 0:
		c.give(fsTicket{pid: m.Pid, code: m.Code, pidfd: -1, failed: true})
	case m.Kind == wire.FSExit && len(fds) == 0:
		if exit, ok := c.exits[m.Pid]; ok {
			delete(c.exits, m.Pid)
			exit <- m.Code
		}
		if start, ok := c.enders[m.Pid]; ok {
			delete(c.enders, m.Pid)
			go start()
		}
	default:
		ownfd.CloseFDs(fds)
		return false
	}
	return true
}

// give hands t to the oldest start waiting for a ticket, or keeps it. The
// caller holds c.mu.
func (c *fsClient) give(t fsTicket) {
	if len(c.takers) > 0 {
		c.takers[0] <- t
		c.takers = c.takers[1:]
		return
	}
	c.tickets = append(c.tickets, t)
}

// take returns a ticket, and whether the caller still has to ask for its
// replacement: when it has to wait, it asks first.
func (c *fsClient) take() (t fsTicket, owed bool, err error) {
	c.mu.Lock()
	if len(c.tickets) > 0 {
		t = c.tickets[0]
		c.tickets = c.tickets[1:]
		c.mu.Unlock()
		return t, true, nil
	}
	taker := make(chan fsTicket, 1)
	c.takers = append(c.takers, taker)
	c.mu.Unlock()
	if err := c.ask(true); err != nil {
		return t, false, err
	}
	select {
	case t = <-taker:
		return t, false, nil
	case <-c.dead:
		select {
		case t = <-taker: // given just before the end
			t.discard()
		default:
		}
		return fsTicket{}, false, fmt.Errorf("the forkserver (pid %d) ended before it started the child", c.proc.Pid)
	}
}

// ask asks the server for a ticket; urgent when a start waits for it.
func (c *fsClient) ask(urgent bool) error {
	m := wire.FSMessage{Kind: wire.FSStart}
	if urgent {
		m.Code = 1
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := fdpass.SendMsg(c.conn, m.Encode()); err != nil {
		return fmt.Errorf("the forkserver (pid %d): %w", c.proc.Pid, err)
	}
	return nil
}

// warm returns how many tickets for warm children this process holds.
func (c *fsClient) warm() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.tickets {
		if !t.failed {
			n++
		}
	}
	return n
}

// start gives a warm child boot and files to run.
func (c *fsClient) start(boot *wire.Bootstrap, files []*os.File) (popen, error) {
	// (getcwd itself: os.Getwd stats two paths first.)
	if dir, err := syscall.Getwd(); err == nil {
		boot.Dir = dir
	}
	boot.Files = boot.Files[:0]
	frame, err := wire.EncodeBootstrap(boot)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if len(files) > fdpass.MaxFDs {
		return nil, fmt.Errorf("%d descriptors to pass, a forkserver child takes at most %d", len(files), fdpass.MaxFDs)
	}
	var fds []int
	defer func() { ownfd.CloseFDs(fds) }()
	for _, f := range files {
		fd, err := dupCloexec(f)
		if err != nil {
			return nil, fmt.Errorf("passing %s: %w", f.Name(), err)
		}
		fds = append(fds, fd)
	}
	t, err := c.assign(fds, frame)
	switch {
	case err != nil:
		return nil, err
	case !t.failed:
	case t.pid == 0:
		return nil, fmt.Errorf("the forkserver could not start a child: %w", syscall.Errno(t.code))
	default:
		// The warm child meant for this start ended before it was ready:
		// the program does not call Init, or the child was killed. Join
		// says so.
		t.exit = make(chan int, 1)
		t.exit <- t.code
	}
	return &fsPopen{c: c, pidNum: t.pid, pidfd: t.pidfd, sock: t.sock, lifeline: t.ctl, exit: t.exit}, nil
}

// assign starts the child of a ticket: it writes frame, the bootstrap
// message, to its bootstrap socket, with fds. It skips the tickets of
// children that died waiting, and asks for the replacements of those it
// takes once the child has its message. A failure ticket is returned as
// it is.
func (c *fsClient) assign(fds []int, frame []byte) (fsTicket, error) {
	owed := 0
	defer func() {
		if owed == 0 {
			return
		}
		// Later, so that the server's exec of the replacements does not
		// compete for the processors with the child that starts.
		time.AfterFunc(refillDelay, func() {
			for range owed {
				_ = c.ask(false)
			}
		})
	}()
	for {
		t, owe, err := c.take()
		if owe {
			owed++
		}
		if err != nil || t.failed {
			return t, err
		}
		select {
		case <-t.exit:
			t.discard()
			continue
		default:
		}
		if sendFrame(t.sock, frame, fds) != nil {
			t.discard() // it died waiting
			continue
		}
		return t, nil
	}
}

// fsPopen is a child of the forkserver.
type fsPopen struct {
	c        *fsClient
	pidNum   int
	sock     *os.File // the bootstrap socket, over which it reports
	lifeline *os.File // its control socket, open while it lives
	exit     chan int

	mu    sync.Mutex // orders signals and the pidfd's close
	pidfd int        // -1 if the server sent none
	ended bool       // wait has returned: the pidfd is closed
}

func (p *fsPopen) pid() int { return p.pidNum }

// wait waits for the server to report the child's end. If the server dies
// first, it waits for the child to close its end of the bootstrap socket,
// which it does when it dies: its exit code is then the one it reported,
// or 255 (as Python) if it reported none.
func (p *fsPopen) wait() (int, wire.Report) {
	// Everything is released here, since a Process need not be closed.
	defer func() {
		p.mu.Lock()
		p.ended = true
		if p.pidfd >= 0 {
			ownfd.CloseFDs([]int{p.pidfd})
			p.pidfd = -1
		}
		p.mu.Unlock()
	}()
	if p.sock == nil {
		return <-p.exit, wire.Report{} // it never had a bootstrap socket
	}
	defer ownfd.Close(p.sock)
	defer ownfd.Close(p.lifeline)
	select {
	case code := <-p.exit:
		return code, drainReports(p.sock)
	case <-p.c.dead:
	}
	select {
	case code := <-p.exit:
		return code, drainReports(p.sock)
	default:
	}
	// (A blocking read, on a thread of its own: see adoptQuiet.)
	data, _ := io.ReadAll(p.sock)
	report := parseReports(data)
	code := 255
	if report.HasOutcome {
		code = report.Code
	}
	return code, report
}

// whenEnded leaves the start of the child's waiter to the connection's
// reader, which starts it when the server reports the child's end, or when
// the connection ends (the waiter then reads the child's reports itself).
func (p *fsPopen) whenEnded(start func()) {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.dead:
		go start()
		return
	default:
	}
	if len(p.exit) > 0 {
		go start()
		return
	}
	if _, reported := c.exits[p.pidNum]; !reported {
		go start() // no report will come: nothing would start it later
		return
	}
	c.enders[p.pidNum] = start
}

func (p *fsPopen) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return nil
	}
	var err error
	if p.pidfd >= 0 {
		err = unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	} else {
		err = unix.Kill(p.pidNum, sig) // a kernel without pidfds
	}
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

func (p *fsPopen) release() {}
