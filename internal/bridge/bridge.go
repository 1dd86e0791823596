// Package bridge lets package connection reach what the root keeps to
// itself: it builds Connections around its streams, and reaches the
// machinery of Queues. The root sets these functions in its init; nothing
// else uses them.
package bridge

import (
	"os"
	"time"

	"github.com/mpgo/multiprocessing/internal/queue"
)

// Transport is what carries a Connection's messages (the root's
// transport).
type Transport interface {
	Send(parts ...[]byte) error
	Recv() ([]byte, error)
	// RecvInto is Recv that puts the message's first len(head) bytes
	// into head and the rest into buf when they fit (n is the rest's
	// length), and otherwise returns the whole message as msg.
	RecvInto(head, buf []byte) (n int, msg []byte, err error)
	Poll(timeout time.Duration) (bool, error)
	Close() error
	FD() int
	File() *os.File
}

var (
	// NewConnection returns a *Connection over t, both ways, its
	// messages framed as Python frames them (no kind byte).
	NewConnection func(t Transport) any
	// TransportOf returns the transport of c, a *Connection.
	TransportOf func(c any) Transport
	// QueueEnd returns q's End and maxsize, and a channel closed once q
	// is closed; q is a *Queue[T].
	QueueEnd func(q any) (end queue.End, maxsize int, closed <-chan struct{}, err error)
	// SetQueueEnd makes q, a new *Queue[T], use end, of maxsize.
	SetQueueEnd func(q any, end queue.End, maxsize int)
)
