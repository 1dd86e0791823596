// Package pool is the engine of a Pool: it keeps the workers the root
// starts for it, hands each task to one of them over the worker's own
// socket, and so always knows which worker holds which task.
//
// That knowledge is what Python's Pool lacks: its workers take tasks from
// one shared pipe under one lock, so when a worker dies nobody knows what it
// held, its task never completes, and a worker killed while it waited holds
// the lock for ever. Here a worker runs its tasks in the order they came,
// answers each before it starts the next, and says when it starts one
// after a wait (Serve). So when it dies, the first task it has not
// answered was running if it had said so, and had not reached it
// otherwise: a running task fails, alone, and the others it held go to the
// other workers.
//
// A worker holds one task at a time while its tasks are slow, and up to
// MaxWindow while they are fast, so that it never waits for the pool
// between fast tasks; never more than its share of those waiting.
package pool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// Worker is one process of the pool, as the root started it.
type Worker interface {
	Name() string
	// Done is closed once the process has ended.
	Done() <-chan struct{}
	// Ended returns, once Done is closed, the exit code (-N after signal
	// N) and the error the process's Join returns.
	Ended() (code int, err error)
	Kill()
}

// Start starts a worker whose end of its link (NewLink) is the other end
// of the returned one.
type Start func() (Worker, *Link, error)

// Task is a chunk of calls of one target, encoded by wire.EncodeTask.
type Task struct {
	Job   *Job
	Body  []byte
	Index int // what the job knows the task by
	// Set by the engine.
	seq    uint64
	sentAt time.Time
	missed int // workers that died before they started it
}

// Job is the tasks of one call of the API. Deliver is called once for
// each of its tasks, from any goroutine, never under the engine's lock:
// with the worker's result, or with an error (a *LostError, ErrPoolTerminated,
// the error that broke the pool). Tasks of a job that was dropped are not
// delivered.
type Job struct {
	Deliver func(t *Task, worker string, r *wire.PoolResult, err error)
	dropped bool // under the engine's lock
}

// LostError is a task whose worker died while it held it.
type LostError struct {
	Worker string
	Exit   error // the worker's Join error
}

func (e *LostError) Error() string {
	return fmt.Sprintf("worker %s died while it held the task: %v", e.Worker, e.Exit)
}

// InitError is a worker that ended before it was ready: its initializer
// failed, and so would the next one's. It breaks the pool.
type InitError struct {
	Worker string
	Exit   error
}

func (e *InitError) Error() string {
	return fmt.Sprintf("pool initializer failed in %s: %v", e.Worker, e.Exit)
}

// MaxWindow is the most tasks a worker holds at once.
const MaxWindow = 64

// busyFor is how much work a worker is given ahead: its window holds about
// this much beyond the task it runs.
const busyFor = 200 * time.Microsecond

// drainGrace bounds how long the results a dead worker wrote take to be
// read after it ended: another process may hold its end of the socket.
const drainGrace = time.Second

// maxMissed is how many workers may die with a task next in line before
// it starts until the task is failed as if it had killed them: something
// in it may kill a worker before it can say it started.
const maxMissed = 3

// maxEarlyDeaths is how many workers in a row may be killed before they
// are ready until the pool gives up starting them.
const maxEarlyDeaths = 8

type state uint8

const (
	running state = iota
	closed
	terminated
	broken
)

// Engine is the pool's machinery. Its methods are safe for concurrent use.
type Engine struct {
	start    Start
	size     int
	maxTasks int

	mu          sync.Mutex
	state       state
	stopped     bool  // Close or Terminate was called
	err         error // why the pool is broken
	pending     []*Task
	workers     map[*worker]struct{}
	starting    int // replacements being started
	earlyDeaths int
	over        chan struct{} // closed once no worker runs or will run, after Close or Terminate
	goroutines  sync.WaitGroup
}

type worker struct {
	Worker
	link     *Link
	ready    bool
	retiring bool // it gets no more tasks; its socket closes once it has answered them
	inflight []*Task
	nextSeq  uint64
	started  uint64 // the worker has started, or will without a wait, the tasks up to this one
	sent     int
	window   int
	avg      time.Duration
	lastAt   time.Time
	out      []byte        // frames for the writer, under the engine's lock
	wake     chan struct{} // tells the writer there is out, or retiring
}

// New starts size workers. If one fails to start, those started are
// killed and the error returned. maxTasks > 0 replaces a worker once it
// has answered that many tasks.
func New(size, maxTasks int, start Start) (*Engine, error) {
	e := &Engine{start: start, size: size, maxTasks: maxTasks, workers: map[*worker]struct{}{}, over: make(chan struct{})}
	for range size {
		w, l, err := start()
		if err != nil {
			e.Terminate()
			return nil, err
		}
		e.mu.Lock()
		e.addLocked(w, l)
		e.mu.Unlock()
	}
	return e, nil
}

// Size is the number of workers the pool keeps.
func (e *Engine) Size() int { return e.size }

func (e *Engine) addLocked(pw Worker, l *Link) {
	w := &worker{Worker: pw, link: l, window: 1, wake: make(chan struct{}, 1)}
	e.workers[w] = struct{}{}
	e.goroutines.Add(3)
	go e.read(w)
	go e.write(w)
	go func() {
		defer e.goroutines.Done()
		<-w.Done()
		_ = w.link.sock.SetReadDeadline(time.Now().Add(drainGrace))
	}()
}

// Submit queues tasks, which the engine hands to workers in order.
func (e *Engine) Submit(tasks ...*Task) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.refusalLocked(); err != nil {
		return err
	}
	e.pending = append(e.pending, tasks...)
	e.dispatchAllLocked()
	return nil
}

func (e *Engine) refusalLocked() error {
	switch e.state {
	case closed:
		return mperr.ErrPoolClosed
	case terminated:
		return mperr.ErrPoolTerminated
	case broken:
		return e.err
	}
	return nil
}

// Drop forgets job: its tasks not yet handed to a worker are removed, and
// none of its tasks is delivered any more.
func (e *Engine) Drop(job *Job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	job.dropped = true
	kept := e.pending[:0]
	for _, t := range e.pending {
		if t.Job != job {
			kept = append(kept, t)
		}
	}
	clear(e.pending[len(kept):])
	e.pending = kept
	e.retireIdleLocked()
}

func (e *Engine) dispatchAllLocked() {
	for w := range e.workers {
		if len(e.pending) == 0 {
			return
		}
		e.dispatchLocked(w)
	}
}

// dispatchLocked hands w as many waiting tasks as its window and its share
// of those waiting allow.
func (e *Engine) dispatchLocked(w *worker) {
	if !w.ready || w.retiring || len(e.pending) == 0 {
		return
	}
	ready := 0
	for o := range e.workers {
		if o.ready && !o.retiring {
			ready++
		}
	}
	share := (len(e.pending) + ready - 1) / ready
	n := min(w.window-len(w.inflight), share, len(e.pending))
	if e.maxTasks > 0 {
		n = min(n, e.maxTasks-w.sent)
	}
	if n <= 0 {
		return
	}
	now := time.Now()
	for _, t := range e.pending[:n] {
		w.nextSeq++
		t.seq, t.sentAt = w.nextSeq, now
		w.out = wire.AppendTask(w.out, t.seq, t.Body)
		w.inflight = append(w.inflight, t)
	}
	w.sent += n
	clear(e.pending[:n])
	e.pending = e.pending[n:]
	if len(e.pending) == 0 {
		e.pending = nil
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// write sends w's frames, the many that gathered as one write, and closes
// its socket once it retires: the worker reads the end of the stream and
// exits.
func (e *Engine) write(w *worker) {
	defer e.goroutines.Done()
	var spare []byte
	for {
		select {
		case <-w.wake:
		case <-w.Done():
			return
		}
		e.mu.Lock()
		out, retiring := w.out, w.retiring && len(w.inflight) == 0
		w.out = spare[:0]
		e.mu.Unlock()
		if len(out) > 0 {
			if _, err := w.link.sock.Write(out); err != nil {
				// The worker is gone or going; the reader learns how.
				return
			}
		}
		spare = out
		if retiring {
			w.link.closeSocket()
			return
		}
	}
}

// read takes w's answers until its socket ends, then handles its end.
func (e *Engine) read(w *worker) {
	defer e.goroutines.Done()
	r := bufio.NewReaderSize(w.link.sock, 64<<10)
	var protocol error
	for {
		frame, err := wire.ReadFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
				protocol = err
			}
			break
		}
		if protocol = e.answer(w, frame); protocol != nil {
			break
		}
	}
	if protocol != nil {
		// A worker that says what it should not cannot be trusted with
		// more tasks.
		w.Kill()
	}
	<-w.Done()
	e.ended(w)
	w.link.Close()
}

// answer handles one frame from w.
func (e *Engine) answer(w *worker, frame []byte) error {
	if wire.IsReady(frame) {
		e.mu.Lock()
		w.ready = true
		e.earlyDeaths = 0
		e.dispatchLocked(w)
		e.retireIdleLocked() // a replacement may come once the work is done
		e.mu.Unlock()
		return nil
	}
	if upTo, ok := wire.ParseTasksStarted(frame); ok {
		e.mu.Lock()
		w.started = max(w.started, upTo)
		e.mu.Unlock()
		return nil
	}
	r, err := wire.DecodeResult(frame)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if len(w.inflight) == 0 || w.inflight[0].seq != r.Seq {
		held, terminated := len(w.inflight), e.state == terminated
		e.mu.Unlock()
		if terminated {
			return nil // its tasks were failed already
		}
		return fmt.Errorf("worker %s answered task %d, holding %d", w.Name(), r.Seq, held)
	}
	t := w.inflight[0]
	w.inflight[0] = nil
	w.inflight = w.inflight[1:]
	e.learnLocked(w, t)
	if e.maxTasks > 0 && w.sent >= e.maxTasks {
		e.retireLocked(w)
	}
	e.dispatchLocked(w)
	e.retireIdleLocked()
	dropped := t.Job.dropped
	e.mu.Unlock()
	if !dropped {
		t.Job.Deliver(t, w.Name(), r, nil)
	}
	return nil
}

// learnLocked sizes w's window from how long its tasks take: the time it
// was busy with t, since t reached it or since its last answer.
func (e *Engine) learnLocked(w *worker, t *Task) {
	now := time.Now()
	since := t.sentAt
	if w.lastAt.After(since) {
		since = w.lastAt
	}
	busy := now.Sub(since)
	w.lastAt = now
	if w.avg == 0 {
		w.avg = busy
	} else {
		w.avg += (busy - w.avg) / 8
	}
	w.window = MaxWindow
	if w.avg > 0 {
		w.window = min(MaxWindow, 1+int(busyFor/w.avg))
	}
}

// retireLocked gives w no more tasks, and wakes its writer, which closes
// its socket once it has answered those it holds.
func (e *Engine) retireLocked(w *worker) {
	w.retiring = true
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// retireIdleLocked lets workers go once a closed pool has no work left.
func (e *Engine) retireIdleLocked() {
	if e.state != closed || len(e.pending) > 0 {
		return
	}
	for w := range e.workers {
		if len(w.inflight) == 0 {
			e.retireLocked(w)
		}
	}
}

// ended handles the end of w, whose process has ended and whose answers
// have all been read: the task it ran fails, those it held and had not
// started go back to the head of the queue, and a replacement starts if
// there is work for it.
func (e *Engine) ended(w *worker) {
	code, exit := w.Ended()
	type delivery struct {
		t   *Task
		err error
	}
	var failed []delivery
	e.mu.Lock()
	delete(e.workers, w)
	held := w.inflight
	w.inflight = nil
	if exit == nil && !w.retiring {
		exit = fmt.Errorf("%s exited with code 0 unasked", w.Name())
	}
	var fail []*Task
	switch {
	case e.state == terminated || e.state == broken:
		fail = held
	case !w.ready && code >= 0:
		fail = append(e.breakLocked(&InitError{Worker: w.Name(), Exit: exit}), held...)
	case !w.ready:
		e.earlyDeaths++
		if e.earlyDeaths >= maxEarlyDeaths {
			fail = e.breakLocked(fmt.Errorf("%d pool workers in a row died before they were ready; the last: %w", e.earlyDeaths, exit))
		}
	case len(held) > 0 && (held[0].seq <= max(w.started, w.link.started()) || held[0].missed >= maxMissed):
		failed = append(failed, delivery{held[0], &LostError{Worker: w.Name(), Exit: exit}})
		e.pending = append(held[1:], e.pending...)
	case len(held) > 0:
		held[0].missed++ // none had started
		e.pending = append(held, e.pending...)
	}
	for _, t := range fail {
		failed = append(failed, delivery{t, e.refusalLocked()})
	}
	failed = slices.DeleteFunc(failed, func(d delivery) bool { return d.t.Job.dropped })
	if e.wantsWorkerLocked() {
		e.starting++
		e.goroutines.Add(1)
		go e.replace()
	}
	e.dispatchAllLocked()
	e.checkEndedLocked()
	e.mu.Unlock()
	for _, d := range failed {
		d.t.Job.Deliver(d.t, w.Name(), nil, d.err)
	}
}

// wantsWorkerLocked tells whether the pool needs one more worker: it runs,
// or it is closed with work left.
func (e *Engine) wantsWorkerLocked() bool {
	switch {
	case len(e.workers)+e.starting >= e.size:
		return false
	case e.state == running:
		return true
	case e.state == closed:
		return len(e.pending) > 0
	}
	return false
}

func (e *Engine) replace() {
	defer e.goroutines.Done()
	w, l, err := e.start()
	e.mu.Lock()
	e.starting--
	var fail []*Task
	switch {
	case err != nil:
		fail = e.breakLocked(fmt.Errorf("starting a pool worker: %w", err))
	case e.state == terminated || e.state == broken:
		w.Kill()
		e.addLocked(w, l) // its goroutines see it end
	default:
		e.addLocked(w, l)
		e.retireIdleLocked()
	}
	e.checkEndedLocked()
	why := e.refusalLocked()
	fail = liveLocked(fail)
	e.mu.Unlock()
	deliverErr(fail, why)
}

// breakLocked makes the pool unusable for err, kills its workers, and
// returns the waiting tasks, which the caller fails with err once it has
// let the lock go.
func (e *Engine) breakLocked(err error) []*Task {
	if e.state == broken || e.state == terminated {
		return nil
	}
	e.state, e.err = broken, err
	pending := e.pending
	e.pending = nil
	for w := range e.workers {
		w.Kill()
	}
	return pending
}

// liveLocked keeps of tasks those whose job was not dropped.
func liveLocked(tasks []*Task) []*Task {
	return slices.DeleteFunc(tasks, func(t *Task) bool { return t.Job.dropped })
}

// deliverErr fails tasks with err. The caller does not hold the lock.
func deliverErr(tasks []*Task, err error) {
	for _, t := range tasks {
		t.Job.Deliver(t, "", nil, err)
	}
}

// checkEndedLocked closes over once no worker runs or will start.
func (e *Engine) checkEndedLocked() {
	if !e.stopped || len(e.workers) > 0 || e.starting > 0 {
		return
	}
	select {
	case <-e.over:
	default:
		close(e.over)
	}
}

// Close lets the workers exit once every task submitted is done.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = true
	if e.state == running {
		e.state = closed
	}
	e.retireIdleLocked()
	e.checkEndedLocked()
}

// Terminate kills the workers now; every task not yet delivered fails
// with ErrPoolTerminated.
func (e *Engine) Terminate() {
	e.mu.Lock()
	if e.state == terminated {
		e.mu.Unlock()
		return
	}
	e.state, e.stopped = terminated, true
	pending := e.pending
	e.pending = nil
	for w := range e.workers {
		w.Kill()
	}
	e.checkEndedLocked()
	pending = liveLocked(pending)
	e.mu.Unlock()
	deliverErr(pending, mperr.ErrPoolTerminated)
}

// Join waits, after Close or Terminate, until every worker has ended and
// the engine's goroutines with them; before, it returns ErrPoolRunning.
func (e *Engine) Join() error {
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if !stopped {
		return mperr.ErrPoolRunning
	}
	<-e.over
	e.goroutines.Wait()
	return nil
}
