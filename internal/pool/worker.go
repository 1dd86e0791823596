package pool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"syscall"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// Serve is a worker's life once its initializer has returned: it tells the
// pool it is ready, then runs each task that comes with run and answers it
// before it reads the next, until the pool closes its end (nil) or sends
// what it cannot read (an error).
//
// Each answer is one write of its own, made before the next task starts,
// and each task's number goes into the link's page before it starts (or,
// without a page, a task that came after a wait is announced in a frame,
// wire.TasksStarted): so when the worker dies, every task it finished has
// its answer in the socket, and the pool can tell which one it was
// running, if any.
//
// A pool that closes its end while the worker writes, or with what the
// worker wrote unread, has let the worker go: that is an end too.
func Serve(l *Link, run func(*wire.PoolTask) *wire.PoolResult) error {
	err := serve(l, run)
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	return err
}

func serve(l *Link, run func(*wire.PoolTask) *wire.PoolResult) error {
	sock := l.sock
	if _, err := sock.Write(frame(wire.Ready())); err != nil {
		return fmt.Errorf("pool worker: %w", err)
	}
	r := bufio.NewReaderSize(sock, 64<<10)
	var announced uint64
	for {
		f, err := wire.ReadFrame(r)
		if err != nil {
			return fmt.Errorf("pool worker: reading a task: %w", err)
		}
		t, err := wire.DecodeTask(f)
		if err != nil {
			return fmt.Errorf("pool worker: %w", err)
		}
		switch {
		case l.page != nil:
			atomic.StoreUint64(startedWord(l.page), t.Seq)
		case t.Seq > announced:
			// The task came after a wait: say so, and which of those
			// read with it will run next, before running it.
			announced = t.Seq
			if buffered, _ := r.Peek(r.Buffered()); len(buffered) > 0 {
				if last, ok := wire.BufferedTasks(buffered); ok {
					announced = last
				}
			}
			if _, err := sock.Write(frame(wire.TasksStarted(announced))); err != nil {
				return fmt.Errorf("pool worker: %w", err)
			}
		}
		res := run(t)
		res.Seq = t.Seq
		out := wire.EncodeResult(res)
		if len(out) > wire.MaxFrame {
			res.Values, res.Failures = nil, []wire.PoolFailure{{Call: 0, Message: fmt.Sprintf("the task's results take %d bytes, more than the 1 GiB a message may", len(out))}}
			res.Ran = max(res.Ran, 1)
			out = wire.EncodeResult(res)
		}
		if _, err := sock.Write(frame(out)); err != nil {
			return fmt.Errorf("pool worker: answering: %w", err)
		}
	}
}

func frame(payload []byte) []byte {
	f, _ := wire.AppendFrame(make([]byte, 0, 4+len(payload)), payload)
	return f
}
