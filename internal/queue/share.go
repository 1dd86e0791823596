package queue

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mpgo/multiprocessing/internal/authkey"
	"github.com/mpgo/multiprocessing/internal/conn"
	"github.com/mpgo/multiprocessing/internal/mperr"
)

// Where processes cannot pass descriptors (Windows), a queue is shared
// with a child as an address: its maker serves it on a loopback TCP port
// (Serve), to processes that prove they know the key that travels with
// the address, and a child dials it (DialShared).

// A Sharer is an End that can be shared as an address.
type Sharer interface {
	// Share returns what a child needs to reach the queue: "ADDRESS KEY".
	Share() (string, error)
}

// loopback serves an End on 127.0.0.1 to the processes that know key.
type loopback struct {
	once  sync.Once
	err   error
	where string // "ADDRESS KEY"

	key     []byte
	stop    chan struct{}
	mu      sync.Mutex
	l       net.Listener          // under mu
	closed  bool                  // under mu: close has run
	clients map[*conn.Stream]bool // under mu
	wg      sync.WaitGroup
}

// start starts serving end, of maxsize, once; it returns where.
func (lb *loopback) start(end End, maxsize int) (string, error) {
	lb.once.Do(func() {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		if lb.closed {
			lb.err = mperr.ErrQueueClosed
			return
		}
		lb.key = make([]byte, 32)
		rand.Read(lb.key)
		lb.l, lb.err = net.Listen("tcp", "127.0.0.1:0")
		if lb.err != nil {
			return
		}
		lb.stop = make(chan struct{})
		lb.clients = map[*conn.Stream]bool{}
		lb.where = lb.l.Addr().String() + " " + hex.EncodeToString(lb.key)
		lb.wg.Add(1)
		go lb.accept(lb.l, end, maxsize)
	})
	return lb.where, lb.err
}

func (lb *loopback) accept(l net.Listener, end End, maxsize int) {
	defer lb.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s := conn.NewStream(c)
		lb.mu.Lock()
		if lb.clients == nil {
			lb.mu.Unlock()
			s.Close()
			return
		}
		lb.clients[s] = true
		lb.mu.Unlock()
		lb.wg.Add(1)
		go func() {
			defer lb.wg.Done()
			if shake(s, lb.key, true) == nil {
				s.Grow()
				Serve(end, maxsize, s, lb.stop)
			}
			s.Close()
			lb.mu.Lock()
			delete(lb.clients, s)
			lb.mu.Unlock()
		}()
	}
}

// close stops serving: calls under way are answered, and the clients'
// next calls find the connection closed.
func (lb *loopback) close() {
	lb.mu.Lock()
	lb.closed = true
	if lb.l == nil {
		lb.mu.Unlock()
		return
	}
	lb.l.Close()
	close(lb.stop)
	for s := range lb.clients {
		s.Interrupt()
	}
	lb.clients = nil
	lb.l = nil
	lb.mu.Unlock()
	lb.wg.Wait()
}

// shake is the handshake of a loopback connection, within 10 s.
func shake(s *conn.Stream, key []byte, listening bool) error {
	s.SetDeadline(time.Now().Add(10 * time.Second))
	defer s.SetDeadline(time.Time{})
	return authkey.Both(s, key, listening)
}

// DialShared opens the queue a Sharer's Share described, of maxsize.
func DialShared(where string, maxsize int) (End, error) {
	addr, keyHex, ok := strings.Cut(where, " ")
	key, err := hex.DecodeString(keyHex)
	if !ok || err != nil {
		return nil, fmt.Errorf("a queue shared as %q", where)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: its maker's loopback port: %v", mperr.ErrQueueClosed, err)
	}
	s := conn.NewStream(c)
	if err := shake(s, key, false); err != nil {
		s.Close()
		if errors.Is(err, mperr.ErrAuthentication) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: its maker's loopback port: %v", mperr.ErrQueueClosed, err)
	}
	s.Grow()
	end, _, err := dialNet(s, where)
	return end, err
}
