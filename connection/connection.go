// Package connection is Python's multiprocessing.connection for package
// multiprocessing: Listener and Client (here Dial) over Unix sockets and
// TCP, speaking Python's protocol, so that Go programs and Python programs
// exchange messages either way; and a Queue served to other programs
// (Serve, DialQueue), as Python's managers serve one.
//
// It is a package of its own, as in Python, so that a program that does
// not use the network does not link package net: with cgo, net makes a
// binary load the C library dynamically, which costs every child that
// starts a few tenths of a millisecond and more than a MiB of memory.
package connection

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	mp "github.com/mpgo/multiprocessing"
	"github.com/mpgo/multiprocessing/internal/authkey"
	"github.com/mpgo/multiprocessing/internal/bridge"
	"github.com/mpgo/multiprocessing/internal/netconn"
	"github.com/mpgo/multiprocessing/internal/queue"
)

// HandshakeTimeout bounds the authentication of a connection, on either
// side: a peer that says nothing, or too little, within it is dropped.
// Python's handshake has no bound.
const HandshakeTimeout = 10 * time.Second

// Listener is Python's multiprocessing.connection.Listener: it accepts
// connections from other programs, Go or Python, over a Unix socket or
// TCP. On the wire it is Python's protocol: messages framed as
// send_bytes frames them, and, when the Listener has a key, Python's HMAC
// challenge in both directions (3.12's "{sha256}", and the HMAC-MD5 of
// Python 3.11 and older when the peer uses it).
//
// Unlike Python's, a Listener authenticates each connection beside Accept,
// each within HandshakeTimeout: a silent or slow peer delays nobody, and a
// peer that fails is closed and never surfaces. Accept returns only
// connections that passed.
//
// The handshake proves that the peer knows the key; it encrypts nothing.
// Over a network that others can read, compose with crypto/tls
// (NewListener(tls.NewListener(...), key)).
type Listener struct {
	l       net.Listener
	authkey []byte
	ready   chan accepted
	done    chan struct{}
	close   sync.Once
	wg      sync.WaitGroup

	mu      sync.Mutex
	shaking map[net.Conn]bool // connections in their handshake, closed by Close
}

// accepted is what Accept returns next: a connection, or the listener's
// error.
type accepted struct {
	c   *mp.Connection
	err error
}

// Listen listens on address: network "unix" (a socket file, which Close
// removes) or "tcp", "tcp4", "tcp6" ("127.0.0.1:0" picks a free port; see
// Addr). With a nil authkey there is no handshake, as in Python; with a
// key, even an empty one, every connection must prove it knows it
// (Python 3.11 and 3.12 take an empty key for none: use a key of some
// bytes with them).
func Listen(network, address string, authkey []byte) (*Listener, error) {
	switch network {
	case "unix", "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("%w: Listen on network %q: use unix, tcp, tcp4 or tcp6", mp.ErrBadArgs, network)
	}
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("multiprocessing: Listen: %w", err)
	}
	return NewListener(l, authkey), nil
}

// NewListener accepts connections from l, which it owns from now on: a
// crypto/tls listener, say. authkey as for Listen.
func NewListener(l net.Listener, authkey []byte) *Listener {
	ln := &Listener{l: l, authkey: bytes.Clone(authkey), ready: make(chan accepted), done: make(chan struct{}), shaking: map[net.Conn]bool{}}
	ln.wg.Add(1)
	go ln.acceptLoop()
	return ln
}

// acceptLoop accepts connections and hands each to a handshake of its own.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: tell Accept, and try again a
			// little later, as net/http does.
			if !l.hand(accepted{err: fmt.Errorf("multiprocessing: Accept: %w", err)}) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !l.track(c, true) {
			c.Close()
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			s := netconn.NewStream(c)
			err := handshake(context.Background(), s, l.authkey, true)
			if !l.track(c, false) || err != nil || !l.hand(accepted{c: networkConn(s)}) {
				s.Close()
			}
		}()
	}
}

// track notes c as in its handshake, or as out of it; false once the
// listener is closed.
func (l *Listener) track(c net.Conn, shaking bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shaking == nil {
		return false
	}
	if shaking {
		l.shaking[c] = true
	} else {
		delete(l.shaking, c)
	}
	return true
}

// hand gives a to Accept; false once the listener is closed.
func (l *Listener) hand(a accepted) bool {
	select {
	case l.ready <- a:
		return true
	case <-l.done:
		return false
	}
}

// handshake authenticates s, as the listening side or the dialing one,
// within HandshakeTimeout and before ctx is done; nothing without a key.
func handshake(ctx context.Context, s *netconn.Stream, key []byte, listening bool) error {
	if key == nil {
		return nil
	}
	s.SetDeadline(time.Now().Add(HandshakeTimeout))
	stop := context.AfterFunc(ctx, func() { s.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err := authkey.Both(s, key, listening)
	if !stop() {
		return ctx.Err()
	}
	if err != nil {
		if errors.Is(err, mp.ErrAuthentication) {
			return err
		}
		return fmt.Errorf("multiprocessing: handshake: %w", err)
	}
	s.SetDeadline(time.Time{})
	return nil
}

// Accept waits for the next connection that passed the handshake. Its
// errors are the listener's: one that wraps net.ErrClosed after Close.
func (l *Listener) Accept() (*mp.Connection, error) { return l.accept(nil) }

// accept is Accept that also gives up when stop is closed.
func (l *Listener) accept(stop <-chan struct{}) (*mp.Connection, error) {
	select {
	case a := <-l.ready:
		return a.c, a.err
	case <-l.done:
	case <-stop:
	}
	return nil, fmt.Errorf("multiprocessing: Accept: %w", net.ErrClosed)
}

// Addr is the address the Listener listens on.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

// Close stops listening, closes the connections whose handshake has not
// ended or that Accept has not returned yet, and waits for its goroutines.
// Connections already accepted stay open. A second Close does nothing.
func (l *Listener) Close() error {
	var err error
	l.close.Do(func() {
		close(l.done)
		err = l.l.Close()
		l.mu.Lock()
		for c := range l.shaking {
			c.Close()
		}
		l.shaking = nil
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// Dial connects to a Listener (Python's multiprocessing.connection.Client)
// on network "unix" or "tcp", "tcp4", "tcp6", and proves it knows authkey
// (nil: no handshake, which a Listener with a key refuses). A wrong key is
// mp.ErrAuthentication; a handshake that has not ended within
// HandshakeTimeout is an error, not a hang.
func Dial(network, address string, authkey []byte) (*mp.Connection, error) {
	return DialContext(context.Background(), network, address, authkey)
}

// DialContext is Dial within ctx, which bounds both the connection and the
// handshake.
func DialContext(ctx context.Context, network, address string, authkey []byte) (*mp.Connection, error) {
	switch network {
	case "unix", "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("%w: Dial on network %q: use unix, tcp, tcp4 or tcp6", mp.ErrBadArgs, network)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("multiprocessing: Dial: %w", err)
	}
	return newClient(ctx, c, authkey)
}

// NewClient is Dial over a connection made elsewhere (a crypto/tls client,
// say), which it owns from now on: closed when the handshake fails.
func NewClient(c net.Conn, authkey []byte) (*mp.Connection, error) {
	return newClient(context.Background(), c, authkey)
}

func newClient(ctx context.Context, c net.Conn, key []byte) (*mp.Connection, error) {
	s := netconn.NewStream(c)
	if err := handshake(ctx, s, bytes.Clone(key), false); err != nil {
		s.Close()
		return nil, err
	}
	return networkConn(s), nil
}

// networkConn is a Connection to another program: both ways, messages as
// Python frames them.
func networkConn(s *netconn.Stream) *mp.Connection {
	s.Grow()
	return bridge.NewConnection(s).(*mp.Connection)
}

// Serve serves q to every connection l accepts, as Python's managers serve
// a queue to other programs: each client's Put, Get, their timeouts and
// Qsize are q's, one call at a time per connection. Serve returns nil once
// l or q is closed, having answered the calls under way and closed the
// connections it served: a client's next call gets mp.ErrQueueClosed, and so
// does a Get that waits. It does not close l, which goes on accepting
// until its owner closes it. A client that goes in the middle of a Get may
// lose the item that Get took, as a consumer killed there does; a reply
// that a client does not read for 5 s ends that client's connection.
func Serve[T any](q *mp.Queue[T], l *Listener) error {
	end, maxsize, closed, err := bridge.QueueEnd(q)
	if err != nil {
		return nil
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		clients = map[*netconn.Stream]bool{}
		serving = make(chan struct{})
	)
	for {
		c, err := l.accept(closed)
		if errors.Is(err, net.ErrClosed) {
			break
		}
		if err != nil {
			continue // the listener's trouble (out of descriptors): it goes on
		}
		s := bridge.TransportOf(c).(*netconn.Stream)
		mu.Lock()
		clients[s] = true
		mu.Unlock()
		wg.Go(func() {
			queue.Serve(end, maxsize, s, serving)
			s.Close()
			mu.Lock()
			delete(clients, s)
			mu.Unlock()
		})
	}
	// Each client's call under way is answered (a Get that waits, with
	// mp.ErrQueueClosed); a wait for the next call ends at once.
	close(serving)
	mu.Lock()
	for s := range clients {
		s.Interrupt()
	}
	mu.Unlock()
	wg.Wait()
	return nil
}

// DialQueue opens a queue that a Serve serves at address (network and
// authkey as for Dial). The Queue it returns has the Queue's methods and
// rules, and learns maxsize from the server. Its Close closes this
// client's connection only; it cannot be passed to a child (pass the
// address instead).
//
// A call on a server that has gone gives mp.ErrQueueClosed within a few
// seconds: a call that waits goes as calls of a second each, and every
// piece of an item must move within 5 s. A Put whose answer is lost that
// way returns mp.ErrQueueClosed though the server may have put the item. The
// goroutines of a process that share one client take turns: a Get that
// waits holds the connection a second at a time (a GetNowait beside it
// returns mp.ErrEmpty at once). Give each goroutine its own client where they
// must not wait for each other, as Python gives each thread its own proxy
// connection.
func DialQueue[T any](network, address string, authkey []byte) (*mp.Queue[T], error) {
	c, err := Dial(network, address, authkey)
	if err != nil {
		return nil, err
	}
	return OpenQueue[T](c)
}

// OpenQueue is DialQueue over a Connection from Dial, DialContext or
// NewClient (over TLS, say), which the Queue owns from now on.
func OpenQueue[T any](c *mp.Connection) (*mp.Queue[T], error) {
	s, ok := bridge.TransportOf(c).(*netconn.Stream)
	if !ok {
		return nil, fmt.Errorf("%w: OpenQueue takes a Connection from Dial or NewClient, not a Pipe's", mp.ErrBadArgs)
	}
	end, maxsize, err := queue.DialNet(s, "")
	if err != nil {
		return nil, fmt.Errorf("multiprocessing: OpenQueue: %w", err)
	}
	q := new(mp.Queue[T])
	bridge.SetQueueEnd(q, end, maxsize)
	return q, nil
}
