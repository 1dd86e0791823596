// Package queue is the machinery of package multiprocessing's queues: the
// items, in the memory of the process that made a queue (core.go), the
// broker that serves them to other processes (broker_unix.go), those
// processes' side of it (client_unix.go), and the lanes through which they
// get an unbounded queue's items without asking (lane_unix.go). Items are
// encoded values: the root's Queue[T] does the encoding.
//
// It returns the sentinels of internal/mperr, which the root re-exports.
package queue

import (
	"os"
	"sync"
	"time"

	"github.com/mpgo/multiprocessing/internal/mperr"
)

// End is how a Queue reaches its items: directly, in the process that
// made it, or through the broker, elsewhere. A timeout below zero waits
// for ever, zero not at all.
type End interface {
	Put(item []byte, timeout time.Duration) error
	// PutParts is Put of the item made of parts, which stay the caller's:
	// the queue copies them if it keeps them, and a large item that goes
	// at once into a lane or a connection is not copied first.
	PutParts(parts [][]byte, timeout time.Duration) error
	Get(timeout time.Duration) ([]byte, error)
	Qsize() int
	TaskDone() error
	Join() error
	Close()
	// Door is what a child needs to reach the items, nil where processes
	// cannot share queues.
	Door() *os.File
	// Sync returns once every item this process put is in the queue.
	Sync()
}

// NewOwner makes a queue in this process that holds at most maxsize
// items; maxsize <= 0 means no limit.
func NewOwner(maxsize int) (End, error) {
	return newOwnerEnd(newQueueCore(max(maxsize, 0)))
}

// Dial opens, in a process other than the one that made it, the queue
// behind door, a descriptor that travelled from another End's Door.
// maxsize is the queue's, as its maker was given it. Where queues can be
// shared, Dial owns door from then on, also when it fails.
func Dial(door int, maxsize int) (End, error) { return dialEnd(door, maxsize) }

// DeferPuts lets this process's small Puts into queues made elsewhere wait
// while it holds a batch of items, to go out together: for a child, whose
// exit runs FlushAll. (A program's main process may return from main
// without it.)
func DeferPuts() { deferPuts() }

// FlushAll makes sure that what this process put into queues is in them
// before it exits: Python's feeder threads, joined at exit. Without it, a
// parent that joined its producers could put an item that overtakes theirs.
func FlushAll() { flushQueues() }

// ownerEnd is a queue in the process that made it.
type ownerEnd struct {
	core   *queueCore
	broker *broker
	send   *os.File // the door's sending end

	// Where there are no doors (Windows): the queue served to children.
	shareMu     sync.Mutex
	shareWhere  string
	shareStop   func()
	shareClosed bool
}

// A Sharer is an End that can be shared as an address, where no
// descriptor can be passed.
type Sharer interface {
	// Share returns what a child needs to reach the queue.
	Share() (string, error)
}

// Loopback serves end, of maxsize, to the children it is passed to where
// no descriptor can be passed, and returns the address they dial and what
// stops the service; DialLoopback dials it. Package netconn sets both when
// it is imported (the root does on Windows).
var (
	Loopback     func(end End, maxsize int) (where string, stop func(), err error)
	DialLoopback func(where string) (End, error)
)

// DialShared opens, in a child, the queue whose maker serves it at where
// (see Loopback).
func DialShared(where string) (End, error) {
	if DialLoopback == nil {
		return nil, mperr.ErrUnsupported
	}
	return DialLoopback(where)
}

// stopSharing ends the service of Share, if it began, once the queue is
// closed: a Get that waits there gets ErrQueueClosed first.
func (o *ownerEnd) stopSharing() {
	o.shareMu.Lock()
	o.shareClosed = true
	stop := o.shareStop
	o.shareStop = nil
	o.shareMu.Unlock()
	if stop != nil {
		stop()
	}
}

func (o *ownerEnd) Put(item []byte, timeout time.Duration) error {
	return o.core.put(item, timeout, nil)
}
func (o *ownerEnd) PutParts(parts [][]byte, timeout time.Duration) error {
	return o.core.putParts(parts, timeout)
}
func (o *ownerEnd) Get(timeout time.Duration) ([]byte, error) { return o.core.get(timeout) }
func (o *ownerEnd) Qsize() int                                { return o.core.qsize() }
func (o *ownerEnd) TaskDone() error                           { return o.core.taskDone() }
func (o *ownerEnd) Join() error                               { return o.core.join(nil) }

// joinWithin is Join for at most timeout: errJoinWaits after it. For a
// Join over a network, asked a second at a time.
func (o *ownerEnd) joinWithin(timeout time.Duration) error { return o.core.joinWithin(timeout, nil) }
func (o *ownerEnd) Door() *os.File                         { return o.send }

// Share serves the queue on a loopback port, from the first call on: for
// children where there are no doors to pass (Windows).
func (o *ownerEnd) Share() (string, error) {
	o.shareMu.Lock()
	defer o.shareMu.Unlock()
	switch {
	case o.shareClosed:
		return "", mperr.ErrQueueClosed
	case o.shareWhere != "":
		return o.shareWhere, nil
	case Loopback == nil:
		return "", mperr.ErrUnsupported
	}
	where, stop, err := Loopback(o, o.core.maxsize)
	if err != nil {
		return "", err
	}
	o.shareWhere, o.shareStop = where, stop
	return where, nil
}

// Sync returns at once: the owner's Puts are in the queue when they return.
func (o *ownerEnd) Sync() {}
