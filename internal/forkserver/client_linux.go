package forkserver

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/bootstrap"
	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/launch"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/proc"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// WarmChildren is how many initialised children a client keeps tickets
// for beyond the starts that wait for one.
const WarmChildren = 2

// Supported says whether this system has the forkserver start method.
const Supported = true

// refillDelay is how long after a start its ticket's replacement is asked
// for.
const refillDelay = time.Millisecond

// Client is this process's connection to its forkserver: the server it
// started, and the tickets of warm children it holds.
type Client struct {
	proc     *os.Process
	dir      string   // the private directory of its socket
	conn     *os.File // authenticated, sequenced packets
	lifeline *os.File // the server's bootstrap socket: it ends when this closes
	writeMu  sync.Mutex

	mu      sync.Mutex
	tickets []ticket         // not yet taken, oldest first
	takers  []chan ticket    // starts waiting for a ticket, oldest first
	exits   map[int]chan int // children not yet reported ended
	enders  map[int]func()   // their waiters to start when they are
	dead    chan struct{}    // closed once the connection is lost
	exited  chan struct{}    // closed once the server is reaped
}

// ticket is a warm child handed to this process, or the failure of one.
type ticket struct {
	kind  ticketKind
	pid   int
	ctl   *os.File // its control socket, its lifeline once started; nil for a failure
	sock  *os.File // our end of its bootstrap socket, which it waits on
	pidfd int      // -1 if the server sent none
	exit  chan int // where its exit code will come
	code  int      // of a failure: the exit code, or the errno
}

type ticketKind byte

const (
	warmTicket ticketKind = iota // a warm child, ready
	diedTicket                   // the child pid ended with code before it was ready
	noChild                      // none could be started: code is an errno
)

func (t ticket) discard() {
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

// Ended reports whether the server is known to be gone: its connection
// lost, or the process reaped (whichever this process notices first).
func (c *Client) Ended() bool {
	select {
	case <-c.dead:
		return true
	case <-c.exited:
		return true
	default:
		return false
	}
}

// Options are how a server is started.
type Options struct {
	// WrongKey makes the client prove a key other than the server's: for
	// the tests of authentication.
	WrongKey bool
}

// Start starts a server, connects to it and proves the authkey.
func Start(opts Options) (*Client, error) {
	exe, err := proc.Executable()
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
	if opts.WrongKey {
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
	for range WarmChildren {
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
func execForkserver(exe, dir, addr string, key []byte) (*Client, error) {
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
	boot := &wire.ServerBoot{Token: bootstrap.NewToken(), Key: key, Dir: dir, Listener: 4, ParentPid: os.Getpid()}
	var server *os.Process
	err = launch.InheritSpawn(func(table []int) error {
		table = append(table, ownfd.FD(theirs), ownfd.FD(listener))
		var err error
		server, err = proc.Exec(exe, table, bootstrap.MarkerValue(3, boot.Token, bootstrap.RoleServer), syscall.SIGTERM)
		return err
	})
	if err != nil {
		ownfd.Close(ours)
		return nil, fmt.Errorf("exec %s: %w", exe, err)
	}
	c := &Client{
		proc: server, lifeline: ours, exits: map[int]chan int{}, enders: map[int]func(){},
		dead: make(chan struct{}), exited: make(chan struct{}),
	}
	frame, err := wire.EncodeServerBoot(boot)
	if err == nil {
		err = wire.WriteFrame(ours, frame)
	}
	if err != nil {
		_ = server.Kill()
		_, _ = server.Wait()
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
	// The first message waits for the server's exec; bootstrap.Timeout is
	// what a child allows for the same.
	_ = conn.SetDeadline(time.Now().Add(bootstrap.Timeout))
	if err := answerChallenge(conn, key); err != nil {
		ownfd.Close(conn)
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// read dispatches what the server says until the connection ends.
func (c *Client) read() {
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
func (c *Client) dispatch(m wire.FSMessage, fds []int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case m.Kind == wire.FSStarted && (len(fds) == 2 || len(fds) == 3):
		// The ticket's sockets stay in blocking mode, out of Go's poller:
		// this process reads them once the child has ended (or, if the
		// server died, in a blocking read that holds a thread). In the
		// poller, each read and write of the child at the other end would
		// wake a thread of this process, which on a small machine takes the
		// processor from the child while it starts.
		t := ticket{
			pid: m.Pid, pidfd: -1, exit: make(chan int, 1),
			ctl: ownfd.Adopt(fds[0], "warm child", false), sock: ownfd.Adopt(fds[1], "bootstrap", false),
		}
		if len(fds) == 3 {
			t.pidfd = fds[2]
		}
		c.exits[m.Pid] = t.exit
		c.give(t)
	case m.Kind == wire.FSFailed && len(fds) == 0:
		kind := diedTicket
		if m.Pid == 0 {
			kind = noChild
		}
		c.give(ticket{kind: kind, pid: m.Pid, code: m.Code, pidfd: -1})
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
func (c *Client) give(t ticket) {
	if len(c.takers) > 0 {
		c.takers[0] <- t
		c.takers = c.takers[1:]
		return
	}
	c.tickets = append(c.tickets, t)
}

// take returns a ticket, and whether the caller still has to ask for its
// replacement: when it has to wait, it asks first.
func (c *Client) take() (t ticket, owed bool, err error) {
	c.mu.Lock()
	if len(c.tickets) > 0 {
		t = c.tickets[0]
		c.tickets = c.tickets[1:]
		c.mu.Unlock()
		return t, true, nil
	}
	taker := make(chan ticket, 1)
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
		return ticket{}, false, fmt.Errorf("the forkserver (pid %d) ended before it started the child", c.proc.Pid)
	}
}

// ask asks the server for a ticket; urgent when a start waits for it.
func (c *Client) ask(urgent bool) error {
	m := wire.FSMessage{Kind: wire.FSStart}
	if urgent {
		m.Code = wire.FSUrgent
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := fdpass.SendMsg(c.conn, m.Encode()); err != nil {
		return fmt.Errorf("the forkserver (pid %d): %w", c.proc.Pid, err)
	}
	return nil
}

// Warm returns how many tickets for warm children this process holds.
func (c *Client) Warm() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.tickets {
		if t.kind == warmTicket {
			n++
		}
	}
	return n
}

// Launch gives a warm child boot and files to run.
func (c *Client) Launch(boot *wire.Bootstrap, files []*os.File) (launch.Child, error) {
	// (getcwd itself: os.Getwd stats two paths first.)
	if dir, err := syscall.Getwd(); err == nil {
		boot.Dir = dir
	}
	boot.Files = boot.Files[:0]
	frame := wire.EncodeBootstrap(boot)
	if len(files) > fdpass.MaxFDs {
		return nil, fmt.Errorf("%d descriptors to pass, a forkserver child takes at most %d", len(files), fdpass.MaxFDs)
	}
	var fds []int
	defer func() { ownfd.CloseFDs(fds) }()
	for _, f := range files {
		fd, err := ownfd.Dup(f)
		if err != nil {
			return nil, fmt.Errorf("passing %s: %w", f.Name(), err)
		}
		fds = append(fds, fd)
	}
	t, err := c.assign(fds, frame)
	switch {
	case err != nil:
		return nil, err
	case t.kind == noChild:
		return nil, fmt.Errorf("the forkserver could not start a child: %w", syscall.Errno(t.code))
	case t.kind == diedTicket:
		// The warm child meant for this start ended before it was ready:
		// the program does not call Init, or the child was killed. Join
		// says so.
		t.exit = make(chan int, 1)
		t.exit <- t.code
	}
	return &child{c: c, pidNum: t.pid, pidfd: t.pidfd, sock: t.sock, lifeline: t.ctl, exit: t.exit}, nil
}

// assign starts the child of a ticket: it writes frame, the bootstrap
// message, to its bootstrap socket, with fds. It skips the tickets of
// children that died waiting, and asks for the replacements of those it
// takes once the child has its message. A failure ticket is returned as
// it is.
func (c *Client) assign(fds []int, frame []byte) (ticket, error) {
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
		if err != nil || t.kind != warmTicket {
			return t, err
		}
		select {
		case <-t.exit:
			t.discard()
			continue
		default:
		}
		if bootstrap.SendFrame(t.sock, frame, fds) != nil {
			t.discard() // it died waiting
			continue
		}
		return t, nil
	}
}

// child is a child of the forkserver.
type child struct {
	c        *Client
	pidNum   int
	sock     *os.File // the bootstrap socket, over which it reports
	lifeline *os.File // its control socket, open while it lives
	exit     chan int

	mu    sync.Mutex // orders signals and the pidfd's close
	pidfd int        // -1 if the server sent none
	ended bool       // wait has returned: the pidfd is closed
}

func (p *child) Pid() int { return p.pidNum }

// Wait waits for the server to report the child's end. If the server dies
// first, it waits for the child to close its end of the bootstrap socket,
// which it does when it dies: its exit code is then the one it reported,
// or 255 (as Python) if it reported none.
func (p *child) Wait() (int, wire.Report) {
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
		return code, bootstrap.DrainReports(p.sock)
	case <-p.c.dead:
	}
	select {
	case code := <-p.exit:
		return code, bootstrap.DrainReports(p.sock)
	default:
	}
	// (A blocking read, on a thread of its own: the ticket's sockets stay
	// out of the poller, see dispatch.)
	data, _ := io.ReadAll(p.sock)
	report := bootstrap.ParseReports(data)
	code := 255
	if report.HasOutcome {
		code = report.Code
	}
	return code, report
}

// WhenEnded leaves the start of the child's waiter to the connection's
// reader, which starts it when the server reports the child's end, or when
// the connection ends (the waiter then reads the child's reports itself).
func (p *child) WhenEnded(start func()) {
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

func (p *child) Signal(sig syscall.Signal) error {
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

// Release does nothing: Wait has released all.
func (p *child) Release() {}

// Pid returns the server's pid.
func (c *Client) Pid() int { return c.proc.Pid }

// Dir returns the private directory of the server's socket.
func (c *Client) Dir() string { return c.dir }

// TicketFDs returns the descriptors of the tickets this process holds:
// each warm child's control socket, bootstrap socket and pidfd.
func (c *Client) TicketFDs() []int {
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
