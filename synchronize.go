package multiprocessing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpgo/multiprocessing/internal/shm"
	"github.com/mpgo/multiprocessing/internal/shmsync"
)

// shared is what a synchronisation object or a shared value holds: a
// segment of shared memory, which travels to a child as a descriptor.
type shared struct {
	seg *shm.Segment
}

// newShared makes the segment of a new kind object of size bytes.
func newShared(kind string, size int) (shared, error) {
	seg, err := shm.New("mp-"+kind, size)
	if err != nil {
		return shared{}, fmt.Errorf("multiprocessing: a new %s: %w", kind, err)
	}
	return shared{seg: seg}, nil
}

// openShared maps, in a child, the segment of a kind object sent to it.
func openShared(kind string, fds []int) (shared, error) {
	if len(fds) != 1 {
		return shared{}, fmt.Errorf("a %s sent with %d descriptors", kind, len(fds))
	}
	seg, err := shm.Open(fds[0], "mp-"+kind)
	if err != nil {
		return shared{}, fmt.Errorf("a %s sent to this process: %w", kind, err)
	}
	return shared{seg: seg}, nil
}

// files is what a handle of kind passes to a child.
func (s *shared) files(kind string) ([]*os.File, error) {
	f := s.seg.File()
	if f == nil {
		return nil, fmt.Errorf("%w: a closed %s cannot be passed to a child", ErrBadArgs, kind)
	}
	return []*os.File{f}, nil
}

// Close lets go of the object's descriptor: it can no longer be passed to
// a child, and its memory is freed once every process that holds it has
// closed it or exited. This process may go on using it until it drops its
// last reference. A second Close does nothing.
func (s *shared) Close() error { return s.seg.Close() }

// within turns a duration into Mutex.Lock's deadline: d <= 0, one try.
func within(d time.Duration) time.Time {
	if d <= 0 {
		return time.Unix(0, 1)
	}
	return time.Now().Add(d)
}

// withContext runs wait, which returns false once stop is set, until it
// succeeds or ctx is done; interrupt wakes its sleepers in every process.
// A ctx already done returns its error without a try.
func withContext(ctx context.Context, interrupt func(), wait func(stop *atomic.Bool) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := new(atomic.Bool)
	release := context.AfterFunc(ctx, func() {
		stop.Store(true)
		interrupt()
	})
	defer release()
	ok, err := wait(stop)
	if !ok {
		return ctx.Err()
	}
	return err
}

// Locker is what a Condition waits with: a *Lock or an *RLock. Its
// unexported method keeps other types out.
type Locker interface {
	sync.Locker
	base() *lockBase
}

// lockBase is Lock and RLock: a lock word in shared memory, and for an
// RLock the depth this process holds it to.
type lockBase struct {
	shared
	mu        shmsync.Mutex
	recursive bool
	local     sync.Mutex // guards depth among this process's goroutines
	depth     int
}

func (l *lockBase) base() *lockBase { return l }

func (l *lockBase) kind() string {
	if l.recursive {
		return "RLock"
	}
	return "Lock"
}

func (l *lockBase) init(recursive bool) error {
	l.recursive = recursive
	s, err := newShared(l.kind(), shmsync.MutexSize)
	if err != nil {
		return err
	}
	l.shared, l.mu = s, shmsync.NewMutex(s.seg, 0)
	return nil
}

func (l *lockBase) handleFiles() ([]*os.File, []byte, error) {
	files, err := l.files(l.kind())
	return files, nil, err
}

func (l *lockBase) restoreHandle(fds []int, _ []byte) error {
	s, err := openShared(l.kind(), fds)
	if err != nil {
		return err
	}
	l.shared, l.mu = s, shmsync.NewMutex(s.seg, 0)
	return nil
}

// Acquire waits for the lock and takes it. It returns nil, or an error
// matching ErrOwnerDied when the process that held the lock died holding
// it: the lock is then held by the caller all the same, and what it guards
// may be half changed. An RLock already held by this process is taken
// again at once (its goroutines share it).
func (l *lockBase) Acquire() error {
	_, err := l.acquire(time.Time{}, nil)
	return err
}

// AcquireTimeout is Acquire that waits at most d (d <= 0: one try, which
// also takes a lock whose holder died). It reports whether it took the
// lock; (true, ErrOwnerDied) as for Acquire.
func (l *lockBase) AcquireTimeout(d time.Duration) (bool, error) {
	return l.acquire(within(d), nil)
}

// AcquireContext is Acquire that gives up when ctx is done, with ctx's
// error; a ctx done before the call returns its error without a try.
func (l *lockBase) AcquireContext(ctx context.Context) error {
	return withContext(ctx, l.mu.Interrupt, func(stop *atomic.Bool) (bool, error) {
		return l.acquire(time.Time{}, stop)
	})
}

func (l *lockBase) acquire(deadline time.Time, stop *atomic.Bool) (bool, error) {
	defer runtime.KeepAlive(l)
	if !l.recursive {
		return l.mu.Lock(deadline, stop)
	}
	l.local.Lock()
	if l.depth > 0 && l.mu.Mine() {
		l.depth++
		l.local.Unlock()
		return true, nil
	}
	l.local.Unlock()
	ok, err := l.mu.Lock(deadline, stop)
	if ok {
		l.local.Lock()
		l.depth++
		l.local.Unlock()
	}
	return ok, err
}

// Release lets the lock go. A Lock may be released by any process or
// goroutine, as in Python; releasing one that nobody holds is ErrNotHeld.
// An RLock released by a process that does not hold it is ErrNotOwner; it
// is let go once released as many times as it was acquired.
func (l *lockBase) Release() error {
	defer runtime.KeepAlive(l)
	if !l.recursive {
		return l.mu.Unlock()
	}
	l.local.Lock()
	defer l.local.Unlock()
	if l.depth == 0 || !l.mu.Mine() {
		return ErrNotOwner
	}
	l.depth--
	if l.depth > 0 {
		return nil
	}
	return l.mu.Unlock()
}

// held reports whether this process holds the lock, through this handle
// for an RLock.
func (l *lockBase) held() bool {
	if !l.recursive {
		return l.mu.Mine()
	}
	l.local.Lock()
	defer l.local.Unlock()
	return l.depth > 0 && l.mu.Mine()
}

// releaseAll lets the lock go however deep this process holds it, for a
// Condition's Wait, and returns the depth to restore.
func (l *lockBase) releaseAll() int {
	if !l.recursive {
		l.mu.Unlock()
		return 1
	}
	l.local.Lock()
	defer l.local.Unlock()
	depth := l.depth
	l.depth = 0
	l.mu.Unlock()
	return depth
}

// reacquire takes the lock again to depth, after a Condition's Wait.
func (l *lockBase) reacquire(depth int) error {
	_, err := l.acquire(time.Time{}, nil)
	if l.recursive {
		l.local.Lock()
		l.depth += depth - 1
		l.local.Unlock()
	}
	return err
}

// Locked reports whether some process holds the lock.
func (l *lockBase) Locked() bool {
	defer runtime.KeepAlive(l)
	return l.mu.Locked()
}

// Lock is Acquire for sync.Locker, without the error: use Acquire to learn
// of ErrOwnerDied.
func (l *lockBase) Lock() { l.Acquire() }

// Unlock is Release for sync.Locker; it panics where Release fails, as
// sync.Mutex's does.
func (l *lockBase) Unlock() {
	if err := l.Release(); err != nil {
		panic(err)
	}
}

// Lock is Python's multiprocessing.Lock: a lock shared by processes, kept
// in shared memory. Pass it to a target as an argument or a Runner field
// and it works in the child under every start method. It also keeps the
// goroutines of one process apart, and does not nest: a second Acquire
// waits, in the same process as in another.
//
// A process that dies holding it does not hold it for ever: the next
// Acquire, or the one already waiting, takes it within about a quarter of
// a second and returns ErrOwnerDied. An uncontended Acquire and Release
// make no system call. On Linux the lock is a futex in a memory file; it
// has no name in the file system and needs no cleaning up. On Windows it
// is a word in an anonymous file mapping, and a waiter looks at it every
// millisecond (WaitOnAddress wakes threads of one process only).
type Lock struct{ lockBase }

// NewLock makes a Lock, not held. It fails with ErrUnsupported where
// processes cannot share memory here (macOS and FreeBSD for now).
func NewLock() (*Lock, error) {
	l := new(Lock)
	if err := l.init(false); err != nil {
		return nil, err
	}
	return l, nil
}

// RLock is Python's multiprocessing.RLock: a lock that the process holding
// it may take again, and must release as many times. Go has no thread
// identity, so the owner is the process: its goroutines share the lock.
// Use one handle per process (the one a child receives, or the one a
// Value's Lock returns): two handles of the same lock in one process count
// their depths apart, and the second waits for the first, as in Python.
// Otherwise as Lock.
type RLock struct{ lockBase }

// NewRLock makes an RLock, not held.
func NewRLock() (*RLock, error) {
	l := new(RLock)
	if err := l.init(true); err != nil {
		return nil, err
	}
	return l, nil
}

// Semaphore is Python's multiprocessing.Semaphore, or BoundedSemaphore: a
// count of units that Acquire takes and Release gives back, shared by
// processes. It has no owner: units taken by a process that dies are not
// given back, as in Python.
type Semaphore struct {
	shared
	sem shmsync.Sem
}

// NewSemaphore makes a Semaphore of value units (value < 0: ErrBadArgs).
func NewSemaphore(value int) (*Semaphore, error) { return newSemaphore(value, false) }

// NewBoundedSemaphore makes a Semaphore that refuses to go above value: a
// Release past it is ErrTooManyReleases.
func NewBoundedSemaphore(value int) (*Semaphore, error) { return newSemaphore(value, true) }

func newSemaphore(value int, bounded bool) (*Semaphore, error) {
	if value < 0 || int64(value) >= 1<<31 {
		return nil, fmt.Errorf("%w: a semaphore's value must be from 0 to 2^31-1, not %d", ErrBadArgs, value)
	}
	s, err := newShared("Semaphore", shmsync.SemSize)
	if err != nil {
		return nil, err
	}
	sem := &Semaphore{shared: s, sem: shmsync.NewSem(s.seg, 0)}
	sem.sem.Init(uint32(value), bounded)
	return sem, nil
}

func (s *Semaphore) handleFiles() ([]*os.File, []byte, error) {
	files, err := s.files("Semaphore")
	return files, nil, err
}

func (s *Semaphore) restoreHandle(fds []int, _ []byte) error {
	sh, err := openShared("Semaphore", fds)
	if err != nil {
		return err
	}
	s.shared, s.sem = sh, shmsync.NewSem(sh.seg, 0)
	return nil
}

// Acquire waits for a unit and takes it. It returns nil: the error is
// there for the other Acquire methods' sake.
func (s *Semaphore) Acquire() error {
	defer runtime.KeepAlive(s)
	s.sem.Acquire(time.Time{}, nil)
	return nil
}

// AcquireTimeout is Acquire that waits at most d (d <= 0: one try), and
// reports whether it took a unit.
func (s *Semaphore) AcquireTimeout(d time.Duration) (bool, error) {
	defer runtime.KeepAlive(s)
	return s.sem.Acquire(within(d), nil), nil
}

// AcquireContext is Acquire that gives up when ctx is done, with ctx's
// error.
func (s *Semaphore) AcquireContext(ctx context.Context) error {
	defer runtime.KeepAlive(s)
	return withContext(ctx, s.sem.Interrupt, func(stop *atomic.Bool) (bool, error) {
		return s.sem.Acquire(time.Time{}, stop), nil
	})
}

// Release gives a unit back, and wakes a waiter. For a bounded semaphore,
// a Release past its initial value is ErrTooManyReleases.
func (s *Semaphore) Release() error {
	defer runtime.KeepAlive(s)
	return s.sem.Release()
}

// Value is the number of units free now (Python's get_value).
func (s *Semaphore) Value() int {
	defer runtime.KeepAlive(s)
	return s.sem.Value()
}

// Event is Python's multiprocessing.Event: a flag that processes set,
// clear and wait for. A process killed while it waits blocks no Set
// (Python's Set then hangs: CPython gh-75158).
type Event struct {
	shared
	ev shmsync.Event
}

// NewEvent makes an Event, not set.
func NewEvent() (*Event, error) {
	s, err := newShared("Event", shmsync.EventSize)
	if err != nil {
		return nil, err
	}
	return &Event{shared: s, ev: shmsync.NewEvent(s.seg, 0)}, nil
}

func (e *Event) handleFiles() ([]*os.File, []byte, error) {
	files, err := e.files("Event")
	return files, nil, err
}

func (e *Event) restoreHandle(fds []int, _ []byte) error {
	s, err := openShared("Event", fds)
	if err != nil {
		return err
	}
	e.shared, e.ev = s, shmsync.NewEvent(s.seg, 0)
	return nil
}

// Set sets the flag and wakes every waiter, in every process.
func (e *Event) Set() {
	defer runtime.KeepAlive(e)
	e.ev.Set()
}

// Clear clears the flag.
func (e *Event) Clear() {
	defer runtime.KeepAlive(e)
	e.ev.Clear()
}

// IsSet reports whether the flag is set.
func (e *Event) IsSet() bool {
	defer runtime.KeepAlive(e)
	return e.ev.IsSet()
}

// Wait waits until the flag is set; at once if it is. It returns nil: the
// error is there for WaitContext's sake.
func (e *Event) Wait() error {
	defer runtime.KeepAlive(e)
	e.ev.Wait(time.Time{}, nil)
	return nil
}

// WaitTimeout waits at most d for the flag (d <= 0: a look) and reports it.
func (e *Event) WaitTimeout(d time.Duration) (bool, error) {
	defer runtime.KeepAlive(e)
	return e.ev.Wait(within(d), nil), nil
}

// WaitContext waits for the flag until ctx is done, then returns ctx's
// error.
func (e *Event) WaitContext(ctx context.Context) error {
	defer runtime.KeepAlive(e)
	return withContext(ctx, e.ev.Interrupt, func(stop *atomic.Bool) (bool, error) {
		return e.ev.Wait(time.Time{}, stop), nil
	})
}

// Condition is Python's multiprocessing.Condition: processes wait on it,
// with its lock held, until another notifies them. Its lock travels with
// it to a child. A waiter that is killed blocks no Notify (Python's Notify
// then hangs: CPython gh-75158). Up to 1024 may wait at once; Wait fails
// beyond.
type Condition struct {
	shared
	lock Locker
	cond shmsync.Cond
}

// NewCondition makes a Condition over lock, a *Lock or an *RLock; nil
// makes it a new RLock, as Python does.
func NewCondition(lock Locker) (*Condition, error) {
	switch l := lock.(type) {
	case nil:
		rl, err := NewRLock()
		if err != nil {
			return nil, err
		}
		lock = rl
	case *Lock:
		if l == nil {
			return nil, fmt.Errorf("%w: a nil *Lock for a Condition", ErrBadArgs)
		}
	case *RLock:
		if l == nil {
			return nil, fmt.Errorf("%w: a nil *RLock for a Condition", ErrBadArgs)
		}
	}
	s, err := newShared("Condition", shmsync.CondSize)
	if err != nil {
		return nil, err
	}
	return &Condition{shared: s, lock: lock, cond: shmsync.NewCond(s.seg, 0)}, nil
}

// A Condition travels as its own segment, then its lock's; its state says
// which kind of lock.
func (c *Condition) handleFiles() ([]*os.File, []byte, error) {
	own, err := c.files("Condition")
	if err != nil {
		return nil, nil, err
	}
	lock, _, err := c.lock.base().handleFiles()
	if err != nil {
		return nil, nil, err
	}
	return append(own, lock...), []byte(c.lock.base().kind()), nil
}

func (c *Condition) restoreHandle(fds []int, state []byte) error {
	if len(fds) != 2 {
		return fmt.Errorf("a Condition sent with %d descriptors", len(fds))
	}
	var lock Locker
	switch string(state) {
	case "Lock":
		lock = new(Lock)
	case "RLock":
		lock = &RLock{lockBase{recursive: true}}
	default:
		return fmt.Errorf("a Condition over a %q", state)
	}
	if err := lock.base().restoreHandle(fds[1:], nil); err != nil {
		return err
	}
	s, err := openShared("Condition", fds[:1])
	if err != nil {
		return err
	}
	c.shared, c.lock, c.cond = s, lock, shmsync.NewCond(s.seg, 0)
	return nil
}

// Close closes the Condition, and its lock.
func (c *Condition) Close() error {
	return errors.Join(c.shared.Close(), c.lock.base().Close())
}

// Acquire acquires the Condition's lock, as its Acquire does.
func (c *Condition) Acquire() error { return c.lock.base().Acquire() }

// Release releases the Condition's lock, as its Release does.
func (c *Condition) Release() error { return c.lock.base().Release() }

// Wait lets the lock go, waits for a Notify, and takes the lock again
// before it returns, as deep as it was held. It needs the lock held by
// this process (else ErrNotHeld); it returns ErrOwnerDied, with the lock
// held, when the lock's holder died meanwhile.
func (c *Condition) Wait() error {
	_, err := c.wait(time.Time{})
	return err
}

// WaitTimeout is Wait for at most d (d <= 0: no wait, but the lock is let
// go and taken again); it reports whether a Notify came.
func (c *Condition) WaitTimeout(d time.Duration) (bool, error) {
	return c.wait(within(d))
}

func (c *Condition) wait(deadline time.Time) (bool, error) {
	defer runtime.KeepAlive(c)
	l := c.lock.base()
	if !l.held() {
		return false, fmt.Errorf("%w: cannot wait on un-acquired lock", ErrNotHeld)
	}
	slot, seq, err := c.cond.Enter()
	if err != nil {
		return false, err
	}
	depth := l.releaseAll()
	c.cond.Sleep(slot, seq, deadline, nil)
	err = l.reacquire(depth)
	return c.cond.Leave(slot), err
}

// WaitFor waits until pred returns true, for at most d in all (d <= 0:
// pred is called once), and returns pred's last answer. pred runs with the
// lock held, which the caller must hold. When the lock's holder died
// meanwhile, it returns ErrOwnerDied beside the answer.
func (c *Condition) WaitFor(pred func() bool, d time.Duration) (bool, error) {
	end := time.Now().Add(d)
	var died error
	for {
		if pred() {
			return true, died
		}
		left := time.Until(end)
		if left <= 0 {
			return false, died
		}
		if _, err := c.WaitTimeout(left); errors.Is(err, ErrOwnerDied) {
			died = err
		} else if err != nil {
			return false, err
		}
	}
}

// Notify wakes up to n waiters (n <= 0: none), those that have waited
// longest first; a later Wait does not take their turn. It needs the lock
// held by this process (else ErrNotHeld), and never waits for a waiter: a
// waiter whose process died is passed over.
func (c *Condition) Notify(n int) error {
	defer runtime.KeepAlive(c)
	if !c.lock.base().held() {
		return fmt.Errorf("%w: cannot notify on un-acquired lock", ErrNotHeld)
	}
	c.cond.Notify(n)
	return nil
}

// NotifyAll wakes every waiter, as Notify.
func (c *Condition) NotifyAll() error { return c.Notify(1 << 30) }

// Barrier is Python's multiprocessing.Barrier: parties wait for each
// other, and pass together once the last arrives. A party that dies while
// it waits breaks the barrier (Python's hang: CPython gh-123899), as a
// timeout does: the others get ErrBrokenBarrier.
type Barrier struct {
	shared
	b       shmsync.Barrier
	action  *target // nil: none
	timeout time.Duration
}

// NewBarrier makes a Barrier for parties (> 0). action, a registered
// func() or func() error, or nil, runs in the last party to arrive, once
// a generation, before the others are let go; its error or panic breaks the
// barrier and is what that party's Wait returns. timeout is the default of
// Wait (0: none).
func NewBarrier(parties int, action any, timeout time.Duration) (*Barrier, error) {
	if parties <= 0 || parties > 1<<20 {
		return nil, fmt.Errorf("%w: a barrier's parties must be from 1 to 2^20, not %d", ErrBadArgs, parties)
	}
	act, err := barrierAction(action)
	if err != nil {
		return nil, err
	}
	s, err := newShared("Barrier", shmsync.BarrierSize(parties))
	if err != nil {
		return nil, err
	}
	b := &Barrier{shared: s, b: shmsync.NewBarrier(s.seg, 0), action: act, timeout: timeout}
	b.b.Init(parties)
	return b, nil
}

// barrierAction checks a Barrier's action: a registered function of no
// parameters that returns nothing or an error.
func barrierAction(action any) (*target, error) {
	if action == nil {
		return nil, nil
	}
	t, err := lookupTarget(action)
	if err != nil {
		return nil, err
	}
	if !t.fn.IsValid() || t.fn.Type().NumIn() != 0 || t.result != nil {
		return nil, fmt.Errorf("%w: a barrier's action is a func() or a func() error, not %s", ErrBadArgs, t.name)
	}
	return t, nil
}

// A Barrier's state in a child: its timeout, then its action's name.
func (b *Barrier) handleFiles() ([]*os.File, []byte, error) {
	files, err := b.files("Barrier")
	state := []byte(b.timeout.String())
	if b.action != nil {
		state = fmt.Appendf(state, " %s", b.action.name)
	}
	return files, state, err
}

func (b *Barrier) restoreHandle(fds []int, state []byte) error {
	var timeout, name string
	fmt.Sscan(string(state), &timeout, &name)
	d, err := time.ParseDuration(timeout)
	if err != nil {
		return fmt.Errorf("a Barrier sent as %q", state)
	}
	if name != "" {
		if b.action = lookupName(name); b.action == nil {
			return fmt.Errorf("%w: the barrier's action %s", ErrNotRegistered, name)
		}
	}
	s, err := openShared("Barrier", fds)
	if err != nil {
		return err
	}
	b.shared, b.b, b.timeout = s, shmsync.NewBarrier(s.seg, 0), d
	return nil
}

// Wait waits for the other parties, for at most the Barrier's timeout, and
// returns the caller's place in the order of arrival, from 0 to
// Parties()-1. It returns ErrBrokenBarrier when the barrier is or becomes
// broken: by Abort, by Reset, by a timeout, by a waiting party's death, or
// by the action's failure (the last party gets the action's error).
func (b *Barrier) Wait() (int, error) {
	if b.timeout > 0 {
		return b.WaitTimeout(b.timeout)
	}
	return b.wait(time.Time{})
}

// WaitTimeout is Wait for at most d (d <= 0: it breaks the barrier unless
// the caller is the last party).
func (b *Barrier) WaitTimeout(d time.Duration) (int, error) { return b.wait(within(d)) }

func (b *Barrier) wait(deadline time.Time) (int, error) {
	defer runtime.KeepAlive(b)
	var action func() error
	if b.action != nil {
		action = func() (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("multiprocessing: the barrier's action %s panicked: %v", b.action.name, v)
				}
			}()
			_, err = b.action.invoke(nil)
			return err
		}
	}
	return b.b.Wait(deadline, nil, action)
}

// Reset returns the barrier to its empty, unbroken state; parties that
// wait get ErrBrokenBarrier. It returns nil.
func (b *Barrier) Reset() error {
	defer runtime.KeepAlive(b)
	b.b.Reset()
	return nil
}

// Abort breaks the barrier: parties that wait, and every later Wait until
// Reset, get ErrBrokenBarrier. It returns nil.
func (b *Barrier) Abort() error {
	defer runtime.KeepAlive(b)
	b.b.Abort()
	return nil
}

// Parties is the number of parties the barrier waits for.
func (b *Barrier) Parties() int {
	defer runtime.KeepAlive(b)
	return b.b.Parties()
}

// NWaiting is the number of parties waiting now.
func (b *Barrier) NWaiting() int {
	defer runtime.KeepAlive(b)
	return b.b.Waiting()
}

// Broken reports whether the barrier is broken.
func (b *Barrier) Broken() bool {
	defer runtime.KeepAlive(b)
	return b.b.Broken()
}

// An RLock comes back recursive in a child.
func (l *RLock) restoreHandle(fds []int, state []byte) error {
	l.recursive = true
	return l.lockBase.restoreHandle(fds, state)
}
