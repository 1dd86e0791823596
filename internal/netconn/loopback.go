package netconn

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
	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/queue"
)

// Where processes cannot pass descriptors (Windows), a queue is shared
// with a child as an address: its maker serves it on a loopback TCP port
// (queue.Serve), to processes that prove they know the key that travels
// with the address, and a child dials it. Importing this package gives
// package queue these two ways (queue.Loopback, queue.DialLoopback): the
// root imports it on Windows only, so that elsewhere a program that does
// not use the network does not link package net (which, with cgo, makes
// every binary load libc dynamically, and every child start slower).

func init() {
	queue.Loopback = serveLoopback
	queue.DialLoopback = dialLoopback
}

// loopback serves an End on 127.0.0.1 to the processes that know key.
type loopback struct {
	key     []byte
	l       net.Listener
	stop    chan struct{}
	mu      sync.Mutex
	clients map[*Stream]bool // nil once stopped
	wg      sync.WaitGroup
}

// serveLoopback starts serving end, of maxsize; it returns "ADDRESS KEY"
// and what stops the service: the calls under way are answered, and the
// clients' next calls find the connection closed.
func serveLoopback(end queue.End, maxsize int) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	lb := &loopback{key: make([]byte, 32), l: l, stop: make(chan struct{}), clients: map[*Stream]bool{}}
	rand.Read(lb.key)
	lb.wg.Add(1)
	go lb.accept(end, maxsize)
	return l.Addr().String() + " " + hex.EncodeToString(lb.key), lb.close, nil
}

func (lb *loopback) accept(end queue.End, maxsize int) {
	defer lb.wg.Done()
	for {
		c, err := lb.l.Accept()
		if err != nil {
			return
		}
		s := NewStream(c)
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
				queue.Serve(end, maxsize, s, lb.stop)
			}
			s.Close()
			lb.mu.Lock()
			delete(lb.clients, s)
			lb.mu.Unlock()
		}()
	}
}

func (lb *loopback) close() {
	lb.l.Close()
	close(lb.stop)
	lb.mu.Lock()
	for s := range lb.clients {
		s.Interrupt()
	}
	lb.clients = nil
	lb.mu.Unlock()
	lb.wg.Wait()
}

// shake is the handshake of a loopback connection, within 10 s.
func shake(s *Stream, key []byte, listening bool) error {
	s.SetDeadline(time.Now().Add(10 * time.Second))
	defer s.SetDeadline(time.Time{})
	return authkey.Both(s, key, listening)
}

// dialLoopback opens the queue a loopback's "ADDRESS KEY" describes.
func dialLoopback(where string) (queue.End, error) {
	addr, keyHex, ok := strings.Cut(where, " ")
	key, err := hex.DecodeString(keyHex)
	if !ok || err != nil {
		return nil, errors.New("a queue shared with a malformed address")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: its maker's loopback port: %v", mperr.ErrQueueClosed, err)
	}
	s := NewStream(c)
	if err := shake(s, key, false); err != nil {
		s.Close()
		if errors.Is(err, mperr.ErrAuthentication) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: its maker's loopback port: %v", mperr.ErrQueueClosed, err)
	}
	s.Grow()
	end, _, err := queue.DialNet(s, where)
	return end, err
}
