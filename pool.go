package multiprocessing

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/mpgo/multiprocessing/internal/pool"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// PoolOptions configures a Pool: Python's Pool(processes, initializer,
// initargs, maxtasksperchild).
type PoolOptions struct {
	// Processes is the number of workers; <= 0 means CPUCount().
	Processes int
	// Initializer is a registered target that every worker runs once,
	// with InitArgs, before its first task; nil runs none. InitArgs may
	// hold queues, pipes and files (they travel as they do to a Process),
	// which is how a pool's tasks get a queue. An Initializer that fails
	// (returns an error, panics or exits) breaks the pool instead of being
	// tried again for ever, as Python's is: every call then fails with
	// an error that matches ErrInitializer and holds the worker's
	// *ExitError.
	Initializer any
	InitArgs    []any
	// MaxTasksPerChild > 0 replaces a worker with a fresh one once it has
	// run that many tasks (a chunk of Map is one task); 0 keeps workers
	// as long as the pool.
	MaxTasksPerChild int
}

// Pool is a set of worker processes that run registered functions:
// Python's multiprocessing.Pool, with what its ProcessPoolExecutor adds.
// Make one with NewPool or Context.Pool, give it work with Apply,
// ApplyAsync, Map, MapAsync, StarMap, Imap and ImapUnordered (functions,
// not methods, as Go's methods cannot have type parameters), and end it
// with Close or Terminate, then Join:
//
//	p, err := mp.NewPool(mp.PoolOptions{})
//	if err != nil { … }
//	defer func() { p.Close(); p.Join() }()
//	squares, err := mp.Map[int, int](ctx, p, square, []int{1, 2, 3}, 0)
//
// Workers are daemon processes of the pool's context, named as Python names
// them (ForkPoolWorker-1, SpawnPoolWorker-2, ForkServerPoolWorker-3); they
// die with the program and may not start children. A worker runs one task
// at a time.
//
// # Targets
//
// A target is a function registered with Register. Map and Imap call it
// with one item; Apply, ApplyAsync and StarMap with the arguments given. It
// returns R, (R, error), error or nothing (the result is then R's zero
// value). Its parameter and result types are checked before any task
// leaves: ErrBadArgs names the target, the parameter or result, and both
// types. Arguments and results travel as a Queue's items do, so their
// types follow the same rules (gob, or the compact encoding of plain
// kinds); queues, pipes and files cannot be sent to a task (Python cannot
// either): pass them to the Initializer. A target of one of the plain types
// func(P) R and func(P) (R, error), for P and R among bool, int, int64,
// uint64, float64, string and []byte, is called by Map and Imap without
// reflection, which saves a few hundred nanoseconds a call.
//
// # Failures
//
// A task's error or panic comes back as a *TaskError, with the item's
// index and the worker's message (a panic's value and stack). Map, MapAsync
// and StarMap end at the first failed item, and drop their tasks that have
// not started; Imap and ImapUnordered yield the error in the item's place
// and go on. The pool stays usable.
//
// A worker that dies (SIGKILL, os.Exit, a crash) fails the task it was
// running, and only that one, with a *TaskError whose Exit says how it
// died; the pool starts a replacement, and the tasks the dead worker held
// but had not started go to the others. (Python's Pool waits for ever
// there, and its ProcessPoolExecutor fails every pending task and is broken
// for good.)
//
// # Cancelling
//
// A call with a context returns ctx.Err() as soon as ctx is done, and
// drops its tasks that have not reached a worker; the running ones finish
// and their results are dropped. A worker whose tasks take less than a
// fraction of a millisecond holds up to 64 of them at once, which then run.
type Pool struct {
	ctx    *Context
	opts   PoolOptions
	prefix string // the workers' names, before -N
	engine *pool.Engine
	enc    wire.ItemEncoder
	dec    wire.ItemDecoder
}

// noInitializer is the target of the workers of a pool without one.
func noInitializer() {}

func init() { RegisterName("multiprocessing.noInitializer", noInitializer) }

// NewPool starts a pool of workers with the default context's start
// method. It returns once they are started; their initializers run after.
// Errors: ErrBadArgs for options that cannot work (MaxTasksPerChild < 0,
// InitArgs without an Initializer, or ones that do not fit it),
// ErrNotRegistered, ErrDaemonChildren in a daemon process (a pool worker
// cannot start a pool), and any error of starting a process, after which
// the workers started are killed.
func NewPool(opts PoolOptions) (*Pool, error) { return defaultContext.Pool(opts) }

// Pool is NewPool with this context's start method.
func (c *Context) Pool(opts PoolOptions) (*Pool, error) {
	if opts.Processes <= 0 {
		opts.Processes = CPUCount()
	}
	if opts.MaxTasksPerChild < 0 {
		return nil, fmt.Errorf("%w: MaxTasksPerChild must be a positive int or 0, not %d", ErrBadArgs, opts.MaxTasksPerChild)
	}
	if opts.Initializer == nil {
		if len(opts.InitArgs) > 0 {
			return nil, fmt.Errorf("%w: %d InitArgs without an Initializer", ErrBadArgs, len(opts.InitArgs))
		}
		opts.Initializer = noInitializer
	}
	p := &Pool{ctx: c, opts: opts, prefix: workerPrefix[c.StartMethod()]}
	engine, err := pool.New(opts.Processes, opts.MaxTasksPerChild, p.startWorker)
	if err != nil {
		return nil, err
	}
	p.engine = engine
	return p, nil
}

var workerPrefix = map[StartMethod]string{
	Fork:       "ForkPoolWorker",
	Spawn:      "SpawnPoolWorker",
	Forkserver: "ForkServerPoolWorker",
}

// startWorker starts one worker, with its end of a new link.
func (p *Pool) startWorker() (pool.Worker, *pool.Link, error) {
	mine, theirs, err := pool.NewLink()
	if err != nil {
		return nil, nil, fmt.Errorf("multiprocessing: a pool worker's link: %w", err)
	}
	w := newProcess(p.ctx, p.opts.Initializer, p.opts.InitArgs)
	w.Name = p.prefix + strings.TrimPrefix(w.Name, "Process")
	w.Daemon = true
	w.worker = theirs
	err = w.Start()
	pool.CloseFiles(theirs)
	if err != nil {
		mine.Close()
		return nil, nil, err
	}
	return poolWorker{w}, mine, nil
}

// poolWorker is a worker as the engine sees it.
type poolWorker struct{ p *Process }

func (w poolWorker) Name() string          { return w.p.Name }
func (w poolWorker) Done() <-chan struct{} { return w.p.Done() }
func (w poolWorker) Kill()                 { _ = w.p.Kill() }

func (w poolWorker) Ended() (int, error) {
	err := w.p.Join()
	code, _ := w.p.ExitCode()
	_ = w.p.Close()
	return code, err
}

// Processes is the number of workers the pool keeps.
func (p *Pool) Processes() int { return p.engine.Size() }

// Close stops the pool taking work: calls made afterwards return
// ErrPoolClosed. The workers finish every task already submitted, then
// exit. Close returns at once; Join waits. It may be called more than
// once, and after Terminate, where it does nothing.
func (p *Pool) Close() error {
	p.engine.Close()
	return nil
}

// Terminate kills the workers now (SIGKILL), without waiting for their
// work: every result not yet ready fails with ErrPoolTerminated, and calls
// made afterwards return it. Unlike Python's, no result waits for ever
// afterwards. Join then waits for the workers to be gone.
func (p *Pool) Terminate() error {
	p.engine.Terminate()
	return nil
}

// Join waits, after Close or Terminate, until every worker has exited and
// the pool holds no process, descriptor or goroutine; before either, it
// returns ErrPoolRunning.
func (p *Pool) Join() error { return p.engine.Join() }

// TaskError is a task of a Pool that failed: its target returned an error
// or panicked, or its worker died while it ran it.
type TaskError struct {
	// Index is the item's index in the call's items (Map, StarMap, Imap,
	// ImapUnordered), 0 for Apply and ApplyAsync.
	Index int
	// Worker is the name of the worker that ran the task.
	Worker string
	// Message is the target's error, or its panic value and the stack of
	// the target's frames; for a task whose worker died, what is known of
	// how.
	Message string
	// Exit, when the worker died while it ran the task, says how: its
	// exit code (-9 after SIGKILL) and any message.
	Exit *ExitError

	apply bool // the task of an Apply: Index means nothing
}

// Error says which item failed where, and why: "multiprocessing: item 3
// failed in ForkPoolWorker-1: boom".
func (e *TaskError) Error() string {
	what := fmt.Sprintf("item %d", e.Index)
	if e.apply {
		what = "task"
	}
	if e.Exit != nil {
		return fmt.Sprintf("multiprocessing: %s: its worker died while it ran it: %s", what, strings.TrimPrefix(e.Exit.Error(), "multiprocessing: "))
	}
	return fmt.Sprintf("multiprocessing: %s failed in %s: %s", what, e.Worker, e.Message)
}

// Unwrap returns Exit, for errors.As, when the worker died.
func (e *TaskError) Unwrap() error {
	if e.Exit == nil {
		return nil
	}
	return e.Exit
}

// failure turns what the engine says of a task's end into the error of
// its item index.
func failure(index int, apply bool, worker string, err error) error {
	var lost *pool.LostError
	var init *pool.InitError
	switch {
	case errors.As(err, &lost):
		te := &TaskError{Index: index, Worker: lost.Worker, apply: apply}
		if !errors.As(lost.Exit, &te.Exit) {
			te.Message = lost.Exit.Error()
		}
		return te
	case errors.As(err, &init):
		return fmt.Errorf("%w in %s: %w", ErrInitializer, init.Worker, init.Exit)
	}
	return err
}

// AsyncResult is the result of ApplyAsync or MapAsync, ready once the
// call's tasks are done: Python's AsyncResult. Its methods are safe for
// concurrent use, and may be called any number of times.
type AsyncResult[R any] struct {
	done  chan struct{}
	once  sync.Once
	value R
	err   error
	drop  func() // forgets the call's tasks
}

func newAsyncResult[R any]() *AsyncResult[R] {
	return &AsyncResult[R]{done: make(chan struct{}), drop: func() {}}
}

func failedResult[R any](err error) *AsyncResult[R] {
	r := newAsyncResult[R]()
	r.set(*new(R), err)
	return r
}

// set makes r ready, once; later calls do nothing.
func (r *AsyncResult[R]) set(v R, err error) {
	r.once.Do(func() {
		r.value, r.err = v, err
		close(r.done)
	})
}

// Get waits until the result is ready and returns it: the value, or the
// call's error (a *TaskError, ErrPoolTerminated, …).
func (r *AsyncResult[R]) Get() (R, error) {
	<-r.done
	return r.value, r.err
}

// GetTimeout is Get that gives up after d and returns ErrTimeout if the
// result is not ready then; the result stays usable. With d <= 0 it only
// polls.
func (r *AsyncResult[R]) GetTimeout(d time.Duration) (R, error) {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-r.done:
		case <-t.C:
		}
	}
	select {
	case <-r.done:
		return r.value, r.err
	default:
		return *new(R), ErrTimeout
	}
}

// Wait waits until the result is ready.
func (r *AsyncResult[R]) Wait() { <-r.done }

// Ready reports whether the result is ready.
func (r *AsyncResult[R]) Ready() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Successful reports whether the call succeeded, and its error when it did
// not; ErrNotReady (Python's ValueError) before it is ready.
func (r *AsyncResult[R]) Successful() (bool, error) {
	if !r.Ready() {
		return false, ErrNotReady
	}
	return r.err == nil, r.err
}

// Done returns a channel that is closed once the result is ready, for
// select.
func (r *AsyncResult[R]) Done() <-chan struct{} { return r.done }

// wait is Get, or ctx.Err() as soon as ctx is done, when the call's tasks
// that have not started are dropped.
func (r *AsyncResult[R]) wait(ctx context.Context) (R, error) {
	select {
	case <-r.done:
		return r.value, r.err
	case <-ctx.Done():
		r.drop()
		return *new(R), ctx.Err()
	}
}

// Apply calls target(args...) in a worker and returns its result: Python's
// apply. See ApplyAsync.
func Apply[R any](ctx context.Context, p *Pool, target any, args ...any) (R, error) {
	if err := ctx.Err(); err != nil {
		return *new(R), err
	}
	return ApplyAsync[R](p, target, args...).wait(ctx)
}

// ApplyAsync calls target(args...) in a worker, and returns at once its
// result to come: Python's apply_async. An error of the arguments, or of a
// pool closed or terminated, is the result's.
func ApplyAsync[R any](p *Pool, target any, args ...any) *AsyncResult[R] {
	res := newAsyncResult[R]()
	calls := submit[R](p, target, [][]any{args}, 1, func(rs []R, err error) {
		var v R
		if len(rs) > 0 {
			v = rs[0]
		}
		if te, ok := err.(*TaskError); ok {
			te.apply = true
		}
		res.set(v, err)
	})
	res.drop = calls
	return res
}

// Map calls target with each item in workers and returns the results in
// the items' order: Python's map. The items go in chunks of chunksize
// (<= 0: Python's default, the items divided by four times the workers,
// rounded up), a task each. It returns at the first item that fails, with
// a *TaskError, and drops the tasks that have not started; or ctx.Err()
// as soon as ctx is done. No items give an empty slice.
func Map[A, R any](ctx context.Context, p *Pool, target any, items []A, chunksize int) ([]R, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return MapAsync[A, R](p, target, items, chunksize).wait(ctx)
}

// MapAsync is Map that returns at once its result to come: Python's
// map_async.
func MapAsync[A, R any](p *Pool, target any, items []A, chunksize int) *AsyncResult[[]R] {
	t, param, err := itemTarget[A, R](target)
	if err != nil {
		return failedResult[[]R](err)
	}
	chunksize = p.chunksize(chunksize, len(items))
	res := newAsyncResult[[]R]()
	c := newCollector(p, t, chunksize, len(items), res.set)
	var tasks []*pool.Task
	for start := 0; start < len(items); start += chunksize {
		body, err := encodeItems(&p.enc, t, param, items[start:min(start+chunksize, len(items))])
		if err != nil {
			return failedResult[[]R](err)
		}
		tasks = append(tasks, c.task(start, &wire.PoolTask{Target: t.name, Stop: true, Items: body}))
	}
	res.drop = c.start(tasks)
	return res
}

// StarMap calls target(args[i]...) in workers, for each i, and returns the
// results in order: Python's starmap. Otherwise it is Map.
func StarMap[R any](ctx context.Context, p *Pool, target any, args [][]any, chunksize int) ([]R, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := newAsyncResult[[]R]()
	res.drop = submit[R](p, target, args, chunksize, res.set)
	return res.wait(ctx)
}

// submit sends calls of target, chunksize a task, and calls done once with
// their results or the first error; it returns what drops the tasks.
func submit[R any](p *Pool, target any, calls [][]any, chunksize int, done func([]R, error)) (drop func()) {
	t, err := poolTarget(target)
	if err == nil {
		err = t.checkResult(reflect.TypeFor[R]())
	}
	if err != nil {
		done(nil, err)
		return func() {}
	}
	chunksize = p.chunksize(chunksize, len(calls))
	c := newCollector(p, t, chunksize, len(calls), done)
	var tasks []*pool.Task
	for start := 0; start < len(calls); start += chunksize {
		task := &wire.PoolTask{Target: t.name, Stop: true}
		for _, args := range calls[start:min(start+chunksize, len(calls))] {
			call, err := t.encodeCall(&p.enc, args)
			if err != nil {
				done(nil, err)
				return func() {}
			}
			task.Calls = append(task.Calls, call)
		}
		tasks = append(tasks, c.task(start, task))
	}
	return c.start(tasks)
}

// chunksize is the chunk size of a call of n items, Python's when asked <= 0.
func (p *Pool) chunksize(asked, n int) int {
	if asked > 0 {
		return asked
	}
	return max(1, (n+4*p.Processes()-1)/(4*p.Processes()))
}

// collector gathers the results of the tasks of a Map, StarMap or Apply
// into one slice, and ends the call at the first failure.
type collector[R any] struct {
	p       *Pool
	t       *target
	job     pool.Job
	chunk   int
	mu      sync.Mutex
	results []R
	left    int // tasks not yet delivered
	ended   bool
	done    func([]R, error)
}

func newCollector[R any](p *Pool, t *target, chunk, n int, done func([]R, error)) *collector[R] {
	return &collector[R]{p: p, t: t, chunk: chunk, results: make([]R, n), left: (n + chunk - 1) / chunk, done: done}
}

// itemTarget finds the target of a Map or Imap of A items for R results,
// and checks its types.
func itemTarget[A, R any](target any) (*target, reflect.Type, error) {
	t, err := poolTarget(target)
	if err != nil {
		return nil, nil, err
	}
	param, err := t.itemParam(reflect.TypeFor[A]())
	if err == nil {
		err = t.checkResult(reflect.TypeFor[R]())
	}
	return t, param, err
}

func (c *collector[R]) task(start int, t *wire.PoolTask) *pool.Task {
	return &pool.Task{Job: &c.job, Index: start, Body: wire.EncodeTask(t)}
}

// start submits the tasks and returns what drops them.
func (c *collector[R]) start(tasks []*pool.Task) (drop func()) {
	c.job.Deliver = c.deliver
	drop = func() { c.p.engine.Drop(&c.job) }
	if len(tasks) == 0 {
		c.done(c.results, nil)
		return drop
	}
	if err := c.p.engine.Submit(tasks...); err != nil {
		c.done(nil, failure(0, false, "", err))
	}
	return drop
}

func (c *collector[R]) deliver(task *pool.Task, worker string, r *wire.PoolResult, err error) {
	start := task.Index
	end := min(start+c.chunk, len(c.results))
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	switch {
	case err != nil:
		err = failure(start, false, worker, err)
	case r.Ran > end-start:
		err = &TaskError{Index: start, Worker: worker, Message: fmt.Sprintf("multiprocessing: %d results for %d calls", r.Ran, end-start)}
	case len(r.Failures) > 0:
		f := r.Failures[0]
		err = &TaskError{Index: start + f.Call, Worker: worker, Message: f.Message}
	default:
		if derr := decodeValues(&c.p.dec, c.t, r.Values, c.results[start:end]); derr != nil {
			err = &TaskError{Index: start, Worker: worker, Message: fmt.Sprintf("multiprocessing: decoding the results of %s: %v", c.t.name, derr)}
		}
	}
	c.left--
	finished := err != nil || c.left == 0
	c.ended = finished
	c.mu.Unlock()
	if err != nil {
		c.p.engine.Drop(&c.job)
		c.done(nil, err)
		return
	}
	if finished {
		c.done(c.results, nil)
	}
}

// Imap calls target with each item of items in workers and yields the
// results in the items' order, each as soon as it and all before it are
// ready: Python's imap. An item that fails yields its *TaskError in its
// place, and the others go on. It reads items chunksize at a time (<= 0:
// 1), and only a bounded number ahead of the results it has yielded, so
// an endless sequence works. Stopping the loop early drops the tasks not
// started and stops reading items (at the sequence's next yield). When ctx
// is done, it yields ctx.Err() and stops. Errors of the target's types
// are yielded first, alone.
func Imap[A, R any](ctx context.Context, p *Pool, target any, items iter.Seq[A], chunksize int) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) { imap(ctx, p, target, items, chunksize, true, yield) }
}

// ImapUnordered is Imap that yields each result as soon as it is ready,
// whatever its item's place: Python's imap_unordered.
func ImapUnordered[A, R any](ctx context.Context, p *Pool, target any, items iter.Seq[A], chunksize int) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) { imap(ctx, p, target, items, chunksize, false, yield) }
}

// outcome is one item's result, or a last error after which the loop
// ends.
type outcome[R any] struct {
	value R
	err   error
	last  bool
}

// imapCall is the state of one Imap or ImapUnordered loop, shared by the
// goroutine that reads the items, the engine's deliveries and the loop.
type imapCall[R any] struct {
	p       *Pool
	t       *target
	ordered bool
	job     pool.Job
	wake    chan struct{} // the loop has something new
	room    chan struct{} // the reader may read ahead again
	mu      sync.Mutex
	read    int                // items submitted
	yielded int                // items yielded
	inDone  bool               // no more items
	inErr   error              // why the items stopped, yielded after the rest
	ready   map[int]outcome[R] // ordered: results by index
	queue   []outcome[R]       // unordered: results as they came
	chunks  map[*pool.Task]int // items in each task
	stopped bool
}

func imap[A, R any](ctx context.Context, p *Pool, target any, items iter.Seq[A], chunksize int, ordered bool, yield func(R, error) bool) {
	t, param, err := itemTarget[A, R](target)
	if err != nil {
		yield(*new(R), err)
		return
	}
	chunksize = max(1, chunksize)
	c := &imapCall[R]{p: p, t: t, ordered: ordered, wake: make(chan struct{}, 1), room: make(chan struct{}, 1), ready: map[int]outcome[R]{}, chunks: map[*pool.Task]int{}}
	c.job.Deliver = c.deliver
	defer c.stop()
	ahead := p.Processes() * (pool.MaxWindow + 2) * chunksize
	go feed(ctx, c, items, param, chunksize, ahead)
	for {
		o, ok := c.next(ctx)
		if !ok {
			return
		}
		if !yield(o.value, o.err) || o.last {
			return
		}
	}
}

// feed reads items, chunksize a task, at most ahead of what the loop has
// yielded, and submits them.
func feed[A, R any](ctx context.Context, c *imapCall[R], items iter.Seq[A], param reflect.Type, chunksize, ahead int) {
	var why error
	defer func() {
		if v := recover(); v != nil {
			why = fmt.Errorf("multiprocessing: the items of %s panicked: %v", c.t.name, v)
		}
		c.mu.Lock()
		c.inDone, c.inErr = true, why
		c.mu.Unlock()
		signal(c.wake)
	}()
	chunk := make([]A, 0, chunksize)
	send := func() bool {
		c.mu.Lock()
		for !c.stopped && c.read-c.yielded >= ahead {
			c.mu.Unlock()
			select {
			case <-c.room:
			case <-ctx.Done():
			}
			c.mu.Lock()
			if ctx.Err() != nil {
				c.stopped = true
			}
		}
		stopped, start := c.stopped, c.read
		c.mu.Unlock()
		if stopped {
			return false
		}
		body, err := encodeItems(&c.p.enc, c.t, param, chunk)
		if err != nil {
			why = err
			return false
		}
		task := &pool.Task{Job: &c.job, Index: start, Body: wire.EncodeTask(&wire.PoolTask{Target: c.t.name, Items: body})}
		c.mu.Lock()
		c.chunks[task] = len(chunk)
		c.read += len(chunk)
		c.mu.Unlock()
		if err := c.p.engine.Submit(task); err != nil {
			c.mu.Lock()
			delete(c.chunks, task)
			c.read -= len(chunk)
			c.mu.Unlock()
			why = failure(start, false, "", err)
			return false
		}
		chunk = chunk[:0]
		return true
	}
	for a := range items {
		chunk = append(chunk, a)
		if len(chunk) == chunksize && !send() {
			return
		}
	}
	if len(chunk) > 0 {
		send()
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *imapCall[R]) deliver(task *pool.Task, worker string, r *wire.PoolResult, err error) {
	c.mu.Lock()
	n := c.chunks[task]
	delete(c.chunks, task)
	c.mu.Unlock()
	out := make([]outcome[R], n)
	values := make([]R, n)
	switch {
	case err != nil:
		for i := range out {
			out[i].err = failure(task.Index+i, false, worker, err)
		}
	case r.Ran != n:
		for i := range out {
			out[i].err = &TaskError{Index: task.Index + i, Worker: worker, Message: fmt.Sprintf("multiprocessing: %d results for %d calls", r.Ran, n)}
		}
	default:
		if derr := decodeValues(&c.p.dec, c.t, r.Values, values); derr != nil {
			for i := range out {
				out[i].err = &TaskError{Index: task.Index + i, Worker: worker, Message: fmt.Sprintf("multiprocessing: decoding the results of %s: %v", c.t.name, derr)}
			}
			break
		}
		for i := range out {
			out[i].value = values[i]
		}
		for _, f := range r.Failures {
			out[f.Call] = outcome[R]{err: &TaskError{Index: task.Index + f.Call, Worker: worker, Message: f.Message}}
		}
	}
	c.mu.Lock()
	if c.ordered {
		for i, o := range out {
			c.ready[task.Index+i] = o
		}
	} else {
		c.queue = append(c.queue, out...)
	}
	c.mu.Unlock()
	signal(c.wake)
}

// next waits for the next result to yield; false once there is none.
func (c *imapCall[R]) next(ctx context.Context) (outcome[R], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.ordered {
			if o, ok := c.ready[c.yielded]; ok {
				delete(c.ready, c.yielded)
				c.yielded++
				signal(c.room)
				return o, true
			}
		} else if len(c.queue) > 0 {
			o := c.queue[0]
			c.queue = c.queue[1:]
			c.yielded++
			signal(c.room)
			return o, true
		}
		if c.inDone && c.yielded == c.read {
			if c.inErr != nil {
				return outcome[R]{err: c.inErr, last: true}, true
			}
			return outcome[R]{}, false
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-ctx.Done():
		}
		c.mu.Lock()
		if err := ctx.Err(); err != nil {
			return outcome[R]{err: err, last: true}, true
		}
	}
}

// stop ends the loop: the items are read no more, and the tasks not
// started are dropped.
func (c *imapCall[R]) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	signal(c.room)
	c.p.engine.Drop(&c.job)
}
