package multiprocessing

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mpgo/multiprocessing/internal/queue"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// Queue is a first-in first-out queue that processes share: Python's
// multiprocessing.Queue, typed. Pass it to a target as an argument (or a
// Runner field) and it arrives usable in the child, under every start
// method; any process that holds it can pass it on, to grandchildren or
// siblings. Many processes may put and get at once: no item is lost or
// delivered twice, and the items of each producer come out in the order it
// put them.
//
// The items live in the process that made the queue, which serves the
// others. So, unlike Python's, Put on an unbounded queue never waits for a
// reader, and a child that put items nobody has read still exits: Join
// cannot deadlock on it. The other side of this: once the process that
// made the queue closes it, the others get ErrQueueClosed; if it exits
// instead, they get the items it had already handed out to them, then
// ErrQueueClosed.
//
// Values travel gob-encoded, each item on its own, up to 1 GiB; for
// a Queue[any] (or any interface type), register the concrete types with
// gob.Register, as for arguments. A Queue[[]byte] or Queue[string] sends
// the bytes as they are. A value that does not decode into T makes Get
// return an error; the item is consumed.
//
// # Many items at once
//
// While the processes that get from an unbounded queue keep up with it,
// each item travels to them alone. Once they fall behind (the kernel holds
// as many messages for them as it will, about ten) and take items faster
// than one per 50 µs,
// the items waiting travel in batches of up to 16, and never more than
// one getting process's share of those waiting: a Get takes a batch and
// the next Gets of that process hand it out; slow getters get one item at
// a time, so that no busy process sits on items another could take. While
// a child holds a batch, its small Puts into queues made elsewhere wait to
// be written together: until it next waits on such a queue, for at most a
// millisecond, and at the latest when its target returns (a child that
// ends with os.Exit instead may lose them, as Python's os._exit loses what
// its feeder thread holds). So a process that gets from a queue holds at
// most 15 items beyond those its Gets returned, which Qsize does not
// count; if it is killed, they are lost, with the Puts it had not written
// yet. If it closes the queue or its target returns, they go back to the
// head of the queue, where another process may get them after items that
// were put later. (On Linux; elsewhere each Get of another process asks the
// one that made the queue.)
//
// # Large items
//
// A Put of a []byte or a string of more than 16 KiB lends its bytes to
// the queue, which copies them where it keeps them. An item that another
// process gets goes there in a memory file: copied into it and out of it
// by the Get, two copies in all, a third if it had to wait in the queue
// first, and a fourth for a string, which Get makes of the bytes. An item
// that waits in the process that made the queue is copied once there;
// got there from the lane, after other processes began to get, it is
// copied into the memory file and out. Other types are encoded (gob copies
// a large value into its buffer, and out of it) and decoded.
type Queue[T any] struct {
	maxsize int
	mu      sync.Mutex
	end     queue.End     // nil once closed
	closed  chan struct{} // closed by Close; made when first asked for
	enc     wire.ItemEncoder
	dec     wire.ItemDecoder
}

// NewQueue makes a queue that holds at most maxsize items; maxsize <= 0
// means no limit.
func NewQueue[T any](maxsize int) (*Queue[T], error) {
	if maxsize < 0 {
		maxsize = 0
	}
	end, err := queue.NewOwner(maxsize)
	if err != nil {
		return nil, err
	}
	return &Queue[T]{maxsize: maxsize, end: end}, nil
}

func (q *Queue[T]) current() (queue.End, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.end == nil {
		return nil, ErrQueueClosed
	}
	return q.end, nil
}

// Put adds v, waiting while a bounded queue is full. An unbounded queue
// never makes it wait. Errors: ErrQueueClosed after Close (by this process,
// or by the one that made the queue), and any error of gob encoding v.
func (q *Queue[T]) Put(v T) error { return q.put(v, -1) }

// PutTimeout is Put that gives up with ErrFull after d; with d <= 0 it is
// PutNowait.
func (q *Queue[T]) PutTimeout(v T, d time.Duration) error { return q.put(v, max(d, 0)) }

// PutNowait is Put that returns ErrFull at once when the queue is full.
func (q *Queue[T]) PutNowait(v T) error { return q.put(v, 0) }

func (q *Queue[T]) put(v T, timeout time.Duration) error {
	end, err := q.current()
	if err != nil {
		return err
	}
	// Bytes too many for a lane message go to another process in a
	// memory file, or in a frame of their own: lent, not copied first.
	if parts, ok := wire.RawParts(&v); ok && len(parts[1]) > wire.LaneInlineMax {
		return end.PutParts(parts, timeout)
	}
	item, err := q.enc.Encode(&v)
	if err != nil {
		return fmt.Errorf("multiprocessing: Queue.Put: %w", err)
	}
	return end.Put(item, timeout)
}

// Get removes and returns the oldest item, waiting for one while the
// queue is empty. Errors: ErrQueueClosed, and an error naming T when the
// item does not decode into it.
func (q *Queue[T]) Get() (T, error) { return q.get(-1) }

// GetTimeout is Get that gives up with ErrEmpty after d; with d <= 0 it is
// GetNowait.
func (q *Queue[T]) GetTimeout(d time.Duration) (T, error) { return q.get(max(d, 0)) }

// GetNowait is Get that returns ErrEmpty at once when the queue is empty.
// In a process other than the one that made the queue, it also returns
// ErrEmpty while another goroutine of that process is in a Get: one reads
// at a time there, as in Python, where get(block=False) gives up when
// another thread holds the reading lock.
func (q *Queue[T]) GetNowait() (T, error) { return q.get(0) }

func (q *Queue[T]) get(timeout time.Duration) (T, error) {
	var v T
	end, err := q.current()
	if err != nil {
		return v, err
	}
	item, err := end.Get(timeout)
	if err != nil {
		return v, err
	}
	if err := q.dec.Decode(item, &v); err != nil {
		return v, fmt.Errorf("multiprocessing: Queue.Get: an item that is not a %T: %w", v, err)
	}
	return v, nil
}

// Qsize returns the number of items in the queue, 0 once it is closed. As
// in Python, the answer may be stale by the time it is read. Items that a
// process holds from a batch (see "Many items at once") count as taken.
func (q *Queue[T]) Qsize() int {
	end, err := q.current()
	if err != nil {
		return 0
	}
	return end.Qsize()
}

// Empty reports whether the queue has no items (see Qsize).
func (q *Queue[T]) Empty() bool { return q.Qsize() == 0 }

// Full reports whether a bounded queue holds maxsize items (see Qsize).
func (q *Queue[T]) Full() bool { return q.maxsize > 0 && q.Qsize() >= q.maxsize }

// Close ends this process's use of the queue and releases its
// descriptors; Put and Get return ErrQueueClosed afterwards. In the process
// that made the queue, it closes the queue for every process. Closing twice
// does nothing.
func (q *Queue[T]) Close() error {
	q.mu.Lock()
	end := q.end
	q.end = nil
	if end != nil {
		close(q.closedLocked())
	}
	q.mu.Unlock()
	if end != nil {
		end.Close()
	}
	return nil
}

// closing is closed once the queue is.
func (q *Queue[T]) closing() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch := q.closedLocked()
	if q.end == nil {
		select {
		case <-ch:
		default:
			close(ch) // a zero or restored-and-failed Queue
		}
	}
	return ch
}

func (q *Queue[T]) closedLocked() chan struct{} {
	if q.closed == nil {
		q.closed = make(chan struct{})
	}
	return q.closed
}

// JoinThread is Python's join_thread: it returns once every item this
// process put is in the queue, visible to every process. A Put into an
// unbounded queue from a process other than the one that made it returns as
// soon as the item is on its way; a child waits for its items to arrive
// before it exits, and so does Close, so JoinThread is only needed by a
// process that must know its items arrived while it goes on.
func (q *Queue[T]) JoinThread() {
	if end, err := q.current(); err == nil {
		end.Sync()
	}
}

// CancelJoinThread is Python's cancel_join_thread. Nothing waits on a
// feeder thread here, and a child never exits with items on their way, so
// it does nothing.
func (q *Queue[T]) CancelJoinThread() {}

func (q *Queue[T]) handleFiles() ([]*os.File, []byte, error) {
	end, err := q.current()
	if err != nil {
		return nil, nil, err
	}
	state := strconv.Itoa(q.maxsize)
	if door := end.Door(); door != nil {
		return []*os.File{door}, []byte(state), nil
	}
	// No descriptors to pass (Windows): the maker serves the queue on a
	// loopback port, and the child dials it.
	sharer, ok := end.(queue.Sharer)
	if !ok {
		return nil, nil, fmt.Errorf("%w: this queue cannot be shared between processes", ErrUnsupported)
	}
	where, err := sharer.Share()
	if err != nil {
		return nil, nil, err
	}
	return nil, []byte(state + " " + where), nil
}

func (q *Queue[T]) restoreHandle(fds []int, state []byte) error {
	size, where, shared := strings.Cut(string(state), " ")
	maxsize, err := strconv.Atoi(size)
	if err != nil || len(fds) != 1 && !shared || len(fds) != 0 && shared {
		return fmt.Errorf("a queue sent as %q with %d descriptors", state, len(fds))
	}
	var end queue.End
	if shared {
		end, err = queue.DialShared(where)
	} else {
		end, err = queue.Dial(fds[0], maxsize)
	}
	if err != nil {
		return err
	}
	q.maxsize, q.end = maxsize, end
	return nil
}

// SimpleQueue is Python's multiprocessing.SimpleQueue: an unbounded Queue
// with only Put, Get, Empty and Close.
type SimpleQueue[T any] struct{ q Queue[T] }

// NewSimpleQueue makes a SimpleQueue.
func NewSimpleQueue[T any]() (*SimpleQueue[T], error) {
	end, err := queue.NewOwner(0)
	if err != nil {
		return nil, err
	}
	return &SimpleQueue[T]{q: Queue[T]{end: end}}, nil
}

// Put is Queue.Put: it never waits.
func (s *SimpleQueue[T]) Put(v T) error { return s.q.Put(v) }

// Get is Queue.Get.
func (s *SimpleQueue[T]) Get() (T, error) { return s.q.Get() }

// Empty is Queue.Empty.
func (s *SimpleQueue[T]) Empty() bool { return s.q.Empty() }

// Close is Queue.Close.
func (s *SimpleQueue[T]) Close() error { return s.q.Close() }

func (s *SimpleQueue[T]) handleFiles() ([]*os.File, []byte, error) { return s.q.handleFiles() }

func (s *SimpleQueue[T]) restoreHandle(fds []int, state []byte) error {
	return s.q.restoreHandle(fds, state)
}

// JoinableQueue is Python's multiprocessing.JoinableQueue: a Queue whose
// consumers call TaskDone for each item they got, so that Join can wait
// until every item put has been dealt with.
type JoinableQueue[T any] struct{ *Queue[T] }

// NewJoinableQueue makes a JoinableQueue; maxsize as for NewQueue.
func NewJoinableQueue[T any](maxsize int) (*JoinableQueue[T], error) {
	q, err := NewQueue[T](maxsize)
	if err != nil {
		return nil, err
	}
	return &JoinableQueue[T]{q}, nil
}

// TaskDone marks one item as dealt with. Called more times than items were
// put, it returns an error.
func (j *JoinableQueue[T]) TaskDone() error {
	end, err := j.current()
	if err != nil {
		return err
	}
	return end.TaskDone()
}

// Join waits until every item put has been marked done with TaskDone, in
// whatever process. It returns ErrQueueClosed if the queue closes first.
func (j *JoinableQueue[T]) Join() error {
	end, err := j.current()
	if err != nil {
		return err
	}
	return end.Join()
}

func (j *JoinableQueue[T]) restoreHandle(fds []int, state []byte) error {
	j.Queue = new(Queue[T])
	return j.Queue.restoreHandle(fds, state)
}

// flushQueues makes sure that what this process put into queues is in them
// before it exits (see queue.FlushAll).
func flushQueues() { queue.FlushAll() }
