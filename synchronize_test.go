package multiprocessing_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

func init() {
	mp.Register(holdLock)
	mp.Register(holdRLock)
	mp.Register(releaseLock)
	mp.Register(releaseRLock)
	mp.Register(addUnderLock)
	mp.Register(addAtomically)
	mp.Register(waitForEvent)
	mp.Register(releaseSemaphore)
	mp.Register(waitOnCondition)
	mp.Register(waitAtBarrier)
	mp.Register(dieMidUpdate)
	mp.Register(countGeneration)
	mp.Register(failAction)
	mp.Register(addFromGoroutines)
	mp.Register(waitNotified)
	mp.Register(waitForPulse)
	mp.Register(&tally{})
}

// tally is a Runner whose fields are a Lock, a Value and an Array: it adds
// its number into Sum and its slot of Seen, under Guard.
type tally struct {
	*mp.Process
	Guard *mp.Lock
	Sum   *mp.Value[int64]
	Seen  *mp.Array[int32]
	N     int
}

func (r *tally) Run() error {
	if err := r.Guard.Acquire(); err != nil {
		return err
	}
	defer r.Guard.Release()
	r.Sum.Store(r.Sum.Load() + int64(r.N))
	r.Seen.Store(r.N, 1)
	return nil
}

// addFromGoroutines adds 1 to v n times from each of 4 goroutines, each
// under v's lock, with a yield between the read and the write.
func addFromGoroutines(v *mp.Value[int64], n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for range n {
				if err := v.Update(func(x *int64) {
					old := *x
					runtime.Gosched()
					*x = old + 1
				}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitNotified waits on c for a notify, counting itself into waiting with
// the lock held, and fails unless one comes within a minute.
func waitNotified(c *mp.Condition, waiting *mp.Semaphore) error {
	if err := c.Acquire(); err != nil {
		return err
	}
	defer c.Release()
	if err := waiting.Release(); err != nil {
		return err
	}
	ok, err := c.WaitTimeout(time.Minute)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("not notified within a minute")
	}
	return nil
}

// waitForPulse sets ready, then waits for e without a timeout: a Set
// followed at once by a Clear must wake it.
func waitForPulse(e, ready *mp.Event) error {
	ready.Set()
	return e.Wait()
}

// holdLock takes l, sets ready and holds l until it is killed.
func holdLock(l *mp.Lock, ready *mp.Event) error {
	if err := l.Acquire(); err != nil {
		return err
	}
	ready.Set()
	select {}
}

// holdRLock takes l twice, sets ready and holds it until it is killed.
func holdRLock(l *mp.RLock, ready *mp.Event) error {
	for range 2 {
		if err := l.Acquire(); err != nil {
			return err
		}
	}
	ready.Set()
	select {}
}

func releaseLock(l *mp.Lock) error { return l.Release() }

// releaseRLock releases an RLock it does not hold, which must fail.
func releaseRLock(l *mp.RLock) error {
	if err := l.Release(); !errors.Is(err, mp.ErrNotOwner) {
		return fmt.Errorf("Release of another process's RLock: %v", err)
	}
	return nil
}

// addUnderLock adds 1 to v n times, each under v's lock.
func addUnderLock(v *mp.Value[int64], n int) error {
	for range n {
		if err := v.Update(func(x *int64) { *x++ }); err != nil {
			return err
		}
	}
	return nil
}

// addAtomically adds 1 to v n times with sync/atomic, without the lock.
func addAtomically(v *mp.Value[int64], n int) {
	p := v.Ptr()
	for range n {
		atomic.AddInt64(p, 1)
	}
}

// waitForEvent sets ready, then waits for e, for at most a minute.
func waitForEvent(e, ready *mp.Event) error {
	ready.Set()
	if ok, _ := e.WaitTimeout(time.Minute); !ok {
		return errors.New("the event was not set")
	}
	return nil
}

func releaseSemaphore(s *mp.Semaphore) error { return s.Release() }

// waitOnCondition waits on c, with its lock, until flag is set; it counts
// itself into waiting first.
func waitOnCondition(c *mp.Condition, waiting *mp.Semaphore, flag *mp.Value[int32]) error {
	if err := c.Acquire(); err != nil {
		return err
	}
	defer c.Release()
	if err := waiting.Release(); err != nil {
		return err
	}
	ok, err := c.WaitFor(func() bool { return flag.Load() == 1 }, time.Minute)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("not notified within a minute")
	}
	return nil
}

// waitAtBarrier waits at b and puts its place into places.
func waitAtBarrier(b *mp.Barrier, places *mp.Queue[int]) error {
	i, err := b.Wait()
	if err != nil {
		return err
	}
	return places.Put(i)
}

type pair struct{ A, B int64 }

// dieMidUpdate sets A inside an Update, sets ready, and is killed there.
func dieMidUpdate(v *mp.Value[pair], ready *mp.Event) error {
	return v.Update(func(p *pair) {
		p.A = 1
		ready.Set()
		select {}
	})
}

var generations atomic.Int64

// countGeneration is a barrier's action.
func countGeneration() { generations.Add(1) }

func failAction() error { return errors.New("the action failed") }

func newLockOrSkip(t *testing.T) *mp.Lock {
	t.Helper()
	l, err := mp.NewLock()
	supported(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func newEvent(t *testing.T) *mp.Event {
	t.Helper()
	e, err := mp.NewEvent()
	supported(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

func waitSet(t *testing.T, e *mp.Event, what string) {
	t.Helper()
	ok, err := e.WaitTimeout(20 * time.Second)
	require.NoError(t, err)
	require.True(t, ok, what)
}

func TestLockHolderKilledGivesOwnerDiedToTheWaiter(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			l, ready := newLockOrSkip(t), newEvent(t)
			p := startTarget(t, method, holdLock, l, ready)
			waitSet(t, ready, "the child did not take the lock")
			assert.True(t, l.Locked())
			ok, err := l.AcquireTimeout(50 * time.Millisecond)
			require.NoError(t, err)
			require.False(t, ok, "the lock was taken while its holder lived")

			got := make(chan error, 1)
			go func() { got <- l.Acquire() }()
			eventually(t, 10*time.Second, func() bool { return sharedFutexWaiters(os.Getpid()) > 0 }, "the waiter sleeps")
			require.NoError(t, p.Kill()) // while the waiter waits
			killed := time.Now()
			select {
			case err := <-got:
				assert.ErrorIs(t, err, mp.ErrOwnerDied)
				assert.Less(t, time.Since(killed), time.Second)
			case <-time.After(10 * time.Second):
				t.Fatal("the waiter did not get the lock of a dead holder")
			}
			assert.True(t, l.Locked(), "the lock is held by the one that got ErrOwnerDied")
			require.NoError(t, l.Release())
			ok, err = l.AcquireTimeout(0)
			assert.True(t, ok)
			assert.NoError(t, err, "the next Acquire is an ordinary one")
			require.NoError(t, l.Release())
		})
	}
}

func TestLockHolderKilledGivesOwnerDiedToTheNextAcquire(t *testing.T) {
	l, ready := newLockOrSkip(t), newEvent(t)
	p := startTarget(t, mp.Spawn, holdLock, l, ready)
	waitSet(t, ready, "the child did not take the lock")
	require.NoError(t, p.Kill())
	killedJoin(t, p)
	ok, err := l.AcquireTimeout(2 * time.Second)
	assert.True(t, ok)
	assert.ErrorIs(t, err, mp.ErrOwnerDied)
	require.NoError(t, l.Release())

	rl, err := mp.NewRLock()
	supported(t, err)
	defer rl.Close()
	ready.Clear()
	p = startTarget(t, mp.Spawn, holdRLock, rl, ready)
	waitSet(t, ready, "the child did not take the RLock")
	assert.ErrorIs(t, rl.Release(), mp.ErrNotOwner)
	require.NoError(t, p.Kill())
	killedJoin(t, p)
	ok, err = rl.AcquireTimeout(2 * time.Second)
	assert.True(t, ok)
	assert.ErrorIs(t, err, mp.ErrOwnerDied)
	require.NoError(t, rl.Release(), "held once by this process, whatever depth the dead one had")
	assert.False(t, rl.Locked())
}

func TestLockRules(t *testing.T) {
	l := newLockOrSkip(t)
	assert.ErrorIs(t, l.Release(), mp.ErrNotHeld)
	assert.Panics(t, l.Unlock, "Unlock of an unlocked Lock panics, as sync.Mutex's")
	require.NoError(t, l.Acquire())
	ok, err := l.AcquireTimeout(-time.Second)
	assert.False(t, ok, "a Lock does not nest, and a negative timeout is one try")
	assert.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, l.AcquireContext(ctx), context.Canceled, "a context done before the call")

	// Any process may release a Lock, as in Python.
	_, err = run(t, mp.Spawn, releaseLock, l)
	require.NoError(t, err)
	assert.False(t, l.Locked())

	// Goroutines are kept apart.
	var wg sync.WaitGroup
	n := 0
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				l.Lock()
				n++
				l.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 8000, n)

	rl, err := mp.NewRLock()
	supported(t, err)
	defer rl.Close()
	for range 3 {
		require.NoError(t, rl.Acquire())
	}
	_, err = run(t, quickMethod, releaseRLock, rl)
	require.NoError(t, err, "another process cannot release this process's RLock")
	for range 3 {
		assert.True(t, rl.Locked())
		require.NoError(t, rl.Release())
	}
	assert.False(t, rl.Locked())
	assert.ErrorIs(t, rl.Release(), mp.ErrNotOwner)
}

func TestValueUpdatesLoseNothing(t *testing.T) {
	n := 100_000
	if mp.RaceEnabled || testing.Short() {
		n = 10_000
	}
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			v, err := mp.NewValue[int64](0)
			supported(t, err)
			defer v.Close()
			var ps []*mp.Process
			for range 4 {
				ps = append(ps, startTarget(t, method, addUnderLock, v, n))
			}
			for _, p := range ps {
				require.NoError(t, p.Join())
			}
			assert.Equal(t, int64(4*n), v.Load())

			v.Store(0)
			ps = ps[:0]
			for range 4 {
				ps = append(ps, startTarget(t, method, addAtomically, v, n))
			}
			for _, p := range ps {
				require.NoError(t, p.Join())
			}
			assert.Equal(t, int64(4*n), atomic.LoadInt64(v.Ptr()))
		})
	}
}

func TestValueKeepsWhatAKilledUpdateWrote(t *testing.T) {
	v, err := mp.NewValue(pair{A: 0, B: 7})
	supported(t, err)
	defer v.Close()
	ready := newEvent(t)
	p := startTarget(t, quickMethod, dieMidUpdate, v, ready)
	waitSet(t, ready, "the child did not start its update")
	require.NoError(t, p.Kill())
	killedJoin(t, p)
	var seen pair
	err = v.Update(func(x *pair) { seen = *x })
	assert.ErrorIs(t, err, mp.ErrOwnerDied, "the next Update learns that the last one died")
	assert.Equal(t, pair{A: 1, B: 7}, seen, "what the dead Update wrote stays; nothing is rolled back")
	assert.NoError(t, v.Update(func(x *pair) {}), "and the one after is ordinary")
}

func TestSharedTypesRefusePointers(t *testing.T) {
	type named struct {
		N    int
		Name string
	}
	_, err := mp.NewValue(named{})
	if errors.Is(err, mp.ErrUnsupported) {
		t.Skip(err)
	}
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	assert.ErrorContains(t, err, "named")
	_, err = mp.NewArray[*int](3)
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	_, err = mp.NewArray[int](-1)
	assert.ErrorIs(t, err, mp.ErrBadArgs)

	a, err := mp.NewArray[[2]float64](5)
	require.NoError(t, err)
	defer a.Close()
	assert.Equal(t, 5, a.Len())
	a.Store(4, [2]float64{1, 2})
	assert.Equal(t, [2]float64{1, 2}, a.Load(4))
	assert.Panics(t, func() { a.Load(5) })
	require.NoError(t, a.Update(func(xs [][2]float64) { xs[0][1] = 3 }))
	assert.Equal(t, 3.0, a.Slice()[0][1])
}

func TestEventAcrossProcessesAndKilledWaiters(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			e, ready := newEvent(t), newEvent(t)
			dead := startTarget(t, method, waitForEvent, e, ready)
			waitSet(t, ready, "the first waiter did not start")
			ready.Clear()
			require.NoError(t, dead.Kill())
			killedJoin(t, dead)
			live := startTarget(t, method, waitForEvent, e, ready)
			waitSet(t, ready, "the second waiter did not start")
			assert.False(t, e.IsSet())
			e.Set() // a killed waiter must not block it
			require.NoError(t, live.Join())
			ok, err := e.WaitTimeout(0)
			assert.True(t, ok)
			assert.NoError(t, err)
			e.Clear()
			ok, _ = e.WaitTimeout(10 * time.Millisecond)
			assert.False(t, ok)

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			assert.ErrorIs(t, e.WaitContext(ctx), context.DeadlineExceeded)
		})
	}
}

func TestSemaphoreRules(t *testing.T) {
	s, err := mp.NewSemaphore(2)
	supported(t, err)
	defer s.Close()
	for range 2 {
		ok, err := s.AcquireTimeout(0)
		require.NoError(t, err)
		require.True(t, ok)
	}
	ok, _ := s.AcquireTimeout(0)
	assert.False(t, ok)
	assert.Equal(t, 0, s.Value())
	_, err = run(t, warmMethod, releaseSemaphore, s)
	require.NoError(t, err)
	ok, _ = s.AcquireTimeout(5 * time.Second)
	assert.True(t, ok, "a unit released by another process")
	require.NoError(t, s.Release())
	require.NoError(t, s.Release())
	require.NoError(t, s.Release(), "an unbounded semaphore goes past its start")
	assert.Equal(t, 3, s.Value())

	b, err := mp.NewBoundedSemaphore(1)
	require.NoError(t, err)
	defer b.Close()
	assert.ErrorIs(t, b.Release(), mp.ErrTooManyReleases)
	require.NoError(t, b.Acquire())
	_, err = run(t, mp.Spawn, releaseSemaphore, b)
	require.NoError(t, err)
	_, err = run(t, mp.Spawn, releaseSemaphore, b)
	assert.Error(t, err, "a second release past the bound, in a child")

	_, err = mp.NewSemaphore(-1)
	assert.ErrorIs(t, err, mp.ErrBadArgs)

}

func TestConditionNotifiesAcrossProcessesAndKilledWaitersBlockNothing(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			c, err := mp.NewCondition(nil)
			supported(t, err)
			defer c.Close()
			waiting, err := mp.NewSemaphore(0)
			require.NoError(t, err)
			defer waiting.Close()
			flag, err := mp.NewValue[int32](0)
			require.NoError(t, err)
			defer flag.Close()

			dead := startTarget(t, method, waitOnCondition, c, waiting, flag)
			var live []*mp.Process
			for range 3 {
				live = append(live, startTarget(t, method, waitOnCondition, c, waiting, flag))
			}
			for range 4 {
				ok, _ := waiting.AcquireTimeout(20 * time.Second)
				require.True(t, ok, "a waiter did not start")
			}
			// A waiter says so holding the lock, which only its Wait gives
			// up: once the lock is ours, all four wait, none holds it.
			require.NoError(t, c.Acquire())
			require.NoError(t, c.Release())
			require.NoError(t, dead.Kill())
			killedJoin(t, dead)

			require.NoError(t, c.Acquire())
			flag.Store(1)
			done := make(chan error, 1)
			go func() { done <- c.NotifyAll() }()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("NotifyAll waited for a dead waiter")
			}
			require.NoError(t, c.Release())
			for _, p := range live {
				require.NoError(t, p.Join())
			}
		})
	}
}

func TestConditionRules(t *testing.T) {
	l := newLockOrSkip(t)
	c, err := mp.NewCondition(l)
	require.NoError(t, err)
	assert.ErrorIs(t, c.Wait(), mp.ErrNotHeld)
	assert.ErrorIs(t, c.Notify(1), mp.ErrNotHeld)
	require.NoError(t, c.Acquire())
	ok, err := c.WaitTimeout(10 * time.Millisecond)
	assert.False(t, ok)
	assert.NoError(t, err)
	assert.True(t, l.Locked(), "Wait takes the lock again")

	// Notify(1) wakes one goroutine of two.
	var woken atomic.Int32
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			require.NoError(t, c.Acquire())
			if ok, _ := c.WaitTimeout(2 * time.Second); ok {
				woken.Add(1)
			}
			c.Release()
		})
	}
	require.NoError(t, c.Release())
	eventually(t, 10*time.Second, func() bool {
		c.Acquire()
		defer c.Release()
		return l.Locked() && mp.ConditionWaiting(c) == 2
	}, "two goroutines wait")
	require.NoError(t, c.Acquire())
	require.NoError(t, c.Notify(1))
	require.NoError(t, c.Release())
	wg.Wait()
	assert.Equal(t, int32(1), woken.Load())
	require.NoError(t, c.Close())
	_, err = mp.NewCondition((*mp.Lock)(nil))
	assert.ErrorIs(t, err, mp.ErrBadArgs)
}

// barrierAndPlaces is a Barrier of 3 parties, and a queue for the places
// at which waitAtBarrier's parties passed it.
func barrierAndPlaces(t *testing.T) (*mp.Barrier, *mp.Queue[int]) {
	t.Helper()
	b, err := mp.NewBarrier(3, nil, 0)
	supported(t, err)
	t.Cleanup(func() { b.Close() })
	places, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	t.Cleanup(func() { places.Close() })
	return b, places
}

func TestBarrierAcrossProcesses(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			b, places := barrierAndPlaces(t)
			a := startTarget(t, method, waitAtBarrier, b, places)
			c := startTarget(t, method, waitAtBarrier, b, places)
			eventually(t, 20*time.Second, func() bool { return b.NWaiting() == 2 }, "two parties wait")
			i, err := b.Wait()
			require.NoError(t, err)
			require.NoError(t, a.Join())
			require.NoError(t, c.Join())
			got := map[int]bool{i: true}
			for range 2 {
				v, err := places.GetTimeout(10 * time.Second)
				require.NoError(t, err)
				got[v] = true
			}
			assert.Equal(t, map[int]bool{0: true, 1: true, 2: true}, got)
		})
	}
}

func TestBarrierPartyKilledBreaksIt(t *testing.T) {
	b, places := barrierAndPlaces(t)
	p := startTarget(t, quickMethod, waitAtBarrier, b, places)
	eventually(t, 20*time.Second, func() bool { return b.NWaiting() == 1 }, "the child waits")
	got := make(chan error, 1)
	go func() {
		_, err := b.Wait()
		got <- err
	}()
	eventually(t, 10*time.Second, func() bool { return b.NWaiting() == 2 }, "two parties wait")
	require.NoError(t, p.Kill())
	select {
	case err := <-got:
		assert.ErrorIs(t, err, mp.ErrBrokenBarrier)
	case <-time.After(10 * time.Second):
		t.Fatal("a party waited for ever for a dead one")
	}
	assert.True(t, b.Broken())
	_, err := b.WaitTimeout(time.Second)
	assert.ErrorIs(t, err, mp.ErrBrokenBarrier, "broken until Reset")
	require.NoError(t, b.Reset())
	assert.False(t, b.Broken())
}

func TestBarrierActionTimeoutAbort(t *testing.T) {
	b, err := mp.NewBarrier(3, countGeneration, 0)
	supported(t, err)
	defer b.Close()
	generations.Store(0)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for range 4 {
				_, err := b.WaitTimeout(20 * time.Second)
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(4), generations.Load(), "the action runs once a generation")

	f, err := mp.NewBarrier(2, failAction, 0)
	require.NoError(t, err)
	defer f.Close()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := f.WaitTimeout(20 * time.Second)
			errs <- err
		}()
	}
	e1, e2 := <-errs, <-errs
	assert.ElementsMatch(t, []string{"the action failed", mp.ErrBrokenBarrier.Error()}, []string{e1.Error(), e2.Error()})

	tb, err := mp.NewBarrier(2, nil, 20*time.Millisecond)
	require.NoError(t, err)
	defer tb.Close()
	_, err = tb.Wait()
	assert.ErrorIs(t, err, mp.ErrBrokenBarrier, "a timeout breaks the barrier")
	assert.True(t, tb.Broken())
	require.NoError(t, tb.Reset())
	require.NoError(t, tb.Abort())
	_, err = tb.WaitTimeout(time.Second)
	assert.ErrorIs(t, err, mp.ErrBrokenBarrier)
	assert.Equal(t, 2, tb.Parties())

	_, err = mp.NewBarrier(0, nil, 0)
	assert.ErrorIs(t, err, mp.ErrBadArgs)
	_, err = mp.NewBarrier(2, sum, 0)
	assert.ErrorIs(t, err, mp.ErrBadArgs, "an action with parameters")
}

func TestValueUpdatesFromGoroutinesOfSeveralProcessesLoseNothing(t *testing.T) {
	n := 5_000
	if mp.RaceEnabled {
		n = 1_000
	}
	v, err := mp.NewValue[int64](0)
	supported(t, err)
	defer v.Close()
	a := startTarget(t, quickMethod, addFromGoroutines, v, n)
	b := startTarget(t, mp.Spawn, addFromGoroutines, v, n)
	require.NoError(t, addFromGoroutines(v, n))
	require.NoError(t, a.Join())
	require.NoError(t, b.Join())
	assert.Equal(t, int64(12*n), v.Load())
}

func TestContextCancelWakesASleepingWaiter(t *testing.T) {
	l, ready := newLockOrSkip(t), newEvent(t)
	startTarget(t, quickMethod, holdLock, l, ready)
	waitSet(t, ready, "the child did not take the lock")
	s, err := mp.NewSemaphore(0)
	require.NoError(t, err)
	defer s.Close()
	e := newEvent(t)
	for name, wait := range map[string]func(context.Context) error{
		"Lock":      l.AcquireContext,
		"Semaphore": s.AcquireContext,
		"Event":     e.WaitContext,
	} {
		for range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			began := time.Now()
			err := wait(ctx)
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded, name)
			require.Less(t, time.Since(began), time.Second, "%s: a cancel did not wake the waiter", name)
		}
	}
}

func TestConditionNotifyGoesToTheWaiterThatWaited(t *testing.T) {
	c, err := mp.NewCondition(nil)
	supported(t, err)
	defer c.Close()
	waiting, err := mp.NewSemaphore(0)
	require.NoError(t, err)
	defer waiting.Close()
	p := startTarget(t, quickMethod, waitNotified, c, waiting)
	ok, _ := waiting.AcquireTimeout(20 * time.Second)
	require.True(t, ok, "the child did not start waiting")
	require.NoError(t, c.Acquire())
	eventually(t, 10*time.Second, func() bool { return mp.ConditionWaiting(c) == 1 }, "the child waits")
	require.NoError(t, c.Notify(1))
	// A Wait that began after the Notify does not take the child's turn.
	ok, err = c.WaitTimeout(50 * time.Millisecond)
	require.NoError(t, err)
	assert.False(t, ok, "a later waiter took a notify meant for an earlier one")
	require.NoError(t, c.Release())
	require.NoError(t, p.Join(), "the waiter that was notified")
}

func TestEventSetThenClearWakesTheWaiters(t *testing.T) {
	e, ready := newEvent(t), newEvent(t)
	for range 5 {
		ready.Clear()
		p := startTarget(t, quickMethod, waitForPulse, e, ready)
		waitSet(t, ready, "the waiter did not start")
		// Wait until the child sleeps: its thread shows in /proc as S.
		eventually(t, 10*time.Second, func() bool { return sharedFutexWaiters(p.Pid()) > 0 }, "the waiter sleeps")
		e.Set()
		e.Clear()
		require.NotErrorIs(t, p.JoinTimeout(10*time.Second), mp.ErrTimeout, "a pulse did not wake the waiter")
	}
	b, err := mp.NewBoundedSemaphore(0)
	require.NoError(t, err)
	defer b.Close()
	assert.ErrorIs(t, b.Release(), mp.ErrTooManyReleases, "a BoundedSemaphore(0) takes no Release")
}

func TestSharedTypesAsRunnerFields(t *testing.T) {
	guard := newLockOrSkip(t)
	sum, err := mp.NewValue[int64](0)
	require.NoError(t, err)
	defer sum.Close()
	seen, err := mp.NewArray[int32](3)
	require.NoError(t, err)
	defer seen.Close()
	for i := range 3 {
		method := methods[i%len(methods)]
		ctx, err := mp.GetContext(method)
		require.NoError(t, err)
		r := &tally{Guard: guard, Sum: sum, Seen: seen, N: i}
		r.Process = ctx.Process(r)
		require.NoError(t, r.Start())
		require.NoError(t, r.Join(), method)
	}
	assert.Equal(t, int64(0+1+2), sum.Load())
	assert.Equal(t, []int32{1, 1, 1}, seen.Slice())
	assert.False(t, guard.Locked())
}
