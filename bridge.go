package multiprocessing

import (
	"github.com/mpgo/multiprocessing/internal/bridge"
	"github.com/mpgo/multiprocessing/internal/queue"
)

// What package connection needs of Connections and Queues, through
// internal/bridge.
func init() {
	bridge.NewConnection = func(t bridge.Transport) any {
		return &Connection{end: t, readable: true, writable: true}
	}
	bridge.TransportOf = func(c any) bridge.Transport {
		if conn, ok := c.(*Connection); ok && conn != nil {
			return conn.end
		}
		return nil
	}
	bridge.QueueEnd = func(q any) (queue.End, int, <-chan struct{}, error) {
		qi := q.(queueMachinery)
		end, err := qi.current()
		return end, qi.size(), qi.closing(), err
	}
	bridge.SetQueueEnd = func(q any, end queue.End, maxsize int) {
		q.(queueMachinery).use(end, maxsize)
	}
}

// queueMachinery is what every *Queue[T] has, whatever T.
type queueMachinery interface {
	current() (queue.End, error)
	size() int
	closing() <-chan struct{}
	use(end queue.End, maxsize int)
}

func (q *Queue[T]) size() int { return q.maxsize }

func (q *Queue[T]) use(end queue.End, maxsize int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.end, q.maxsize = end, maxsize
}
