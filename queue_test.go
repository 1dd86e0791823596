package multiprocessing_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

type tagged struct{ Producer, Seq int }

func init() {
	mp.Register(echoQueue)
	mp.Register(putAndReturn)
	mp.Register(produce)
	mp.Register(consume)
	mp.Register(putNowaitThrice)
	mp.Register(relayToGrandchild)
	mp.Register(work)
	mp.Register(putBig)
	mp.Register(sumOfQueued)
	mp.Register(sendBig)
	mp.Register(echoUntilNegative)
	mp.Register(&greeter{})
	mp.Register(waitUntilClosed)
}

// greeter is a Runner whose fields are a queue and a pipe end.
type greeter struct {
	*mp.Process
	Out  *mp.JoinableQueue[string]
	Back *mp.Connection
}

func (g *greeter) Run() error {
	if err := g.Out.Put("hello from " + g.Name); err != nil {
		return err
	}
	return g.Back.Send(g.Pid())
}

// echoQueue gets n items from in and puts each, doubled, into out.
func echoQueue(in, out *mp.Queue[int], n int) error {
	for range n {
		v, err := in.Get()
		if err != nil {
			return err
		}
		if err := out.Put(2 * v); err != nil {
			return err
		}
	}
	return nil
}

// putAndReturn puts n items that nobody reads yet, and returns.
func putAndReturn(q *mp.Queue[int], n int) error {
	for i := range n {
		if err := q.Put(i); err != nil {
			return err
		}
	}
	return nil
}

func produce(q *mp.Queue[tagged], producer, n int) error {
	for i := range n {
		if err := q.Put(tagged{producer, i}); err != nil {
			return err
		}
	}
	return nil
}

// consume gets items until one with Seq -1, and puts what it got into out.
func consume(q *mp.Queue[tagged], out *mp.Queue[[]tagged]) error {
	var got []tagged
	for {
		v, err := q.Get()
		if err != nil {
			return err
		}
		if v.Seq < 0 {
			return out.Put(got)
		}
		got = append(got, v)
	}
}

// putNowaitThrice reports the errors of three PutNowait into q.
func putNowaitThrice(q *mp.Queue[int], report *mp.SimpleQueue[string]) error {
	for i := range 3 {
		msg := "ok"
		if err := q.PutNowait(i); err != nil {
			msg = err.Error()
		}
		if err := report.Put(msg); err != nil {
			return err
		}
	}
	return nil
}

// relayToGrandchild hands q on to a grandchild, which puts n items.
func relayToGrandchild(q *mp.Queue[int], n int) error {
	p := mp.NewProcess(putAndReturn, q, n)
	if err := p.Start(); err != nil {
		return err
	}
	return p.Join()
}

// work gets items and marks each done, until it gets -1.
func work(q *mp.JoinableQueue[int]) error {
	for {
		v, err := q.Get()
		if err != nil {
			return err
		}
		if err := q.TaskDone(); err != nil {
			return err
		}
		if v < 0 {
			return nil
		}
	}
}

func putBig(q *mp.Queue[[]byte], size int) error {
	return q.Put(bytes.Repeat([]byte{9}, size))
}

func TestQueueRoundTripWithChild(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			in, err := mp.NewQueue[int](0)
			require.NoError(t, err)
			defer in.Close()
			out, err := mp.NewQueue[int](0)
			require.NoError(t, err)
			defer out.Close()
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			p := ctx.Process(echoQueue, in, out, 100)
			require.NoError(t, p.Start())
			for i := range 100 {
				require.NoError(t, in.Put(i))
			}
			for i := range 100 {
				v, err := out.GetTimeout(20 * time.Second)
				require.NoError(t, err)
				assert.Equal(t, 2*i, v)
			}
			require.NoError(t, p.Join())
		})
	}
}

func TestChildThatPutUnreadItemsStillExits(t *testing.T) {
	q, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	defer q.Close()
	p := mp.NewProcess(putAndReturn, q, 10000)
	require.NoError(t, p.Start())
	require.NoError(t, p.JoinTimeout(60*time.Second), "Join does not wait for anyone to read")
	assert.Equal(t, 10000, q.Qsize())
	for i := range 10000 {
		v, err := q.GetNowait()
		require.NoError(t, err)
		require.Equal(t, i, v)
	}
	assert.True(t, q.Empty())
}

func TestQueueLocalSemantics(t *testing.T) {
	q, err := mp.NewQueue[string](2)
	require.NoError(t, err)
	require.NoError(t, q.Put("a"))
	require.NoError(t, q.PutNowait("b"))
	assert.True(t, q.Full())
	assert.ErrorIs(t, q.PutNowait("c"), mp.ErrFull)
	start := time.Now()
	assert.ErrorIs(t, q.PutTimeout("c", 30*time.Millisecond), mp.ErrFull)
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	assert.Equal(t, 2, q.Qsize())
	v, err := q.Get()
	require.NoError(t, err)
	assert.Equal(t, "a", v)
	v, err = q.GetNowait()
	require.NoError(t, err)
	assert.Equal(t, "b", v)
	_, err = q.GetNowait()
	assert.ErrorIs(t, err, mp.ErrEmpty)
	_, err = q.GetTimeout(20 * time.Millisecond)
	assert.ErrorIs(t, err, mp.ErrEmpty)
	assert.True(t, q.Empty())

	// A blocked Put goes through when a Get makes room.
	require.NoError(t, q.Put("x"))
	require.NoError(t, q.Put("y"))
	done := make(chan error)
	go func() { done <- q.Put("z") }()
	v, err = q.Get()
	require.NoError(t, err)
	assert.Equal(t, "x", v)
	require.NoError(t, <-done)

	require.NoError(t, q.Close())
	require.NoError(t, q.Close(), "closing twice")
	assert.ErrorIs(t, q.Put("late"), mp.ErrQueueClosed)
	_, err = q.Get()
	assert.ErrorIs(t, err, mp.ErrQueueClosed)
	assert.Equal(t, 0, q.Qsize())
	q.JoinThread()
	q.CancelJoinThread()
}

func TestGetWaitsForAPut(t *testing.T) {
	q, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	defer q.Close()
	got := make(chan int)
	go func() {
		v, _ := q.Get()
		got <- v
	}()
	require.NoError(t, q.Put(5))
	select {
	case v := <-got:
		assert.Equal(t, 5, v)
	case <-time.After(10 * time.Second):
		t.Fatal("Get did not return after a Put")
	}
}

func TestMaxsizeHoldsAcrossProcesses(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			q, err := mp.NewQueue[int](2)
			require.NoError(t, err)
			defer q.Close()
			report, err := mp.NewSimpleQueue[string]()
			require.NoError(t, err)
			defer report.Close()
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			p := ctx.Process(putNowaitThrice, q, report)
			require.NoError(t, p.Start())
			require.NoError(t, p.Join())
			for _, want := range []string{"ok", "ok", mp.ErrFull.Error()} {
				got, err := report.Get()
				require.NoError(t, err)
				assert.Equal(t, want, got)
			}
			assert.True(t, report.Empty())
			assert.Equal(t, 2, q.Qsize())
		})
	}
}

func TestQueueNoLossManyProducersManyConsumers(t *testing.T) {
	producers, consumers, each := 4, 4, 25000
	if testing.Short() {
		each = 2500 // Wine's loopback, under -short in CI
	}
	q, err := mp.NewQueue[tagged](0)
	require.NoError(t, err)
	defer q.Close()
	results, err := mp.NewQueue[[]tagged](0)
	require.NoError(t, err)
	defer results.Close()
	var procs []*mp.Process
	for i := range consumers {
		ctx, _ := mp.GetContext(methods[i%len(methods)])
		procs = append(procs, ctx.Process(consume, q, results))
	}
	var prods []*mp.Process
	for i := range producers {
		ctx, _ := mp.GetContext(methods[i%len(methods)])
		prods = append(prods, ctx.Process(produce, q, i, each))
	}
	for _, p := range append(procs, prods...) {
		require.NoError(t, p.Start())
	}
	for _, p := range prods {
		require.NoError(t, p.Join())
	}
	for range consumers {
		require.NoError(t, q.Put(tagged{Seq: -1}))
	}
	seen := make(map[tagged]bool, producers*each)
	for range consumers {
		got, err := results.GetTimeout(2 * time.Minute)
		require.NoError(t, err)
		last := map[int]int{}
		for _, v := range got {
			require.False(t, seen[v], "delivered twice: %v", v)
			seen[v] = true
			if prev, ok := last[v.Producer]; ok {
				require.Greater(t, v.Seq, prev, "first-in first-out for each producer")
			}
			last[v.Producer] = v.Seq
		}
	}
	for _, p := range procs {
		require.NoError(t, p.Join())
	}
	assert.Len(t, seen, producers*each, "nothing lost")
}

func TestQueueBetweenSiblingsAndGrandchildren(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			q, err := mp.NewQueue[tagged](0)
			require.NoError(t, err)
			defer q.Close()
			results, err := mp.NewQueue[[]tagged](0)
			require.NoError(t, err)
			defer results.Close()
			producer := ctx.Process(produce, q, 1, 50)
			consumer := ctx.Process(consume, q, results)
			require.NoError(t, consumer.Start())
			require.NoError(t, producer.Start())
			require.NoError(t, producer.Join())
			require.NoError(t, q.Put(tagged{Seq: -1}))
			got, err := results.GetTimeout(time.Minute)
			require.NoError(t, err)
			assert.Len(t, got, 50, "sibling to sibling")
			require.NoError(t, consumer.Join())

			ints, err := mp.NewQueue[int](0)
			require.NoError(t, err)
			defer ints.Close()
			relay := ctx.Process(relayToGrandchild, ints, 20)
			require.NoError(t, relay.Start())
			require.NoError(t, relay.Join())
			for i := range 20 {
				v, err := ints.GetNowait()
				require.NoError(t, err, "grandchild to parent")
				assert.Equal(t, i, v)
			}
		})
	}
}

func TestJoinableQueue(t *testing.T) {
	q, err := mp.NewJoinableQueue[int](0)
	require.NoError(t, err)
	defer q.Close()
	assert.ErrorContains(t, q.TaskDone(), "TaskDone called more times")
	p := mp.NewProcess(work, q)
	require.NoError(t, p.Start())
	for i := range 50 {
		require.NoError(t, q.Put(i))
	}
	require.NoError(t, q.Put(-1))
	done := make(chan error)
	go func() { done <- q.Join() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("Join did not return after every item was done")
	}
	require.NoError(t, p.Join())
	assert.True(t, q.Empty())
}

// sumOfQueued gets n byte slices from in and puts the sum of each one's
// bytes into out.
func sumOfQueued(in *mp.Queue[[]byte], n int, out *mp.Queue[int]) error {
	for range n {
		b, err := in.Get()
		if err != nil {
			return err
		}
		sum := 0
		for _, c := range b {
			sum += int(c)
		}
		if err := out.Put(sum); err != nil {
			return err
		}
	}
	return nil
}

// A large []byte is lent to the queue by Put, which copies it only where
// it keeps it: changing the slice after Put changes no item, whether it
// waits in the queue, goes to another process through the lane, or goes
// to the queue's maker from a child.
func TestLargeBytesArePutByValue(t *testing.T) {
	const size = 1 << 20
	in, err := mp.NewQueue[[]byte](0)
	require.NoError(t, err)
	defer in.Close()
	out, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	defer out.Close()
	b := bytes.Repeat([]byte{1}, size)
	require.NoError(t, in.Put(b))
	b[0] = 100
	got, err := in.Get()
	require.NoError(t, err)
	assert.Equal(t, byte(1), got[0], "an item that waited in the queue")

	p := mp.NewProcess(sumOfQueued, in, 3, out)
	require.NoError(t, p.Start())
	for i := range 3 {
		b := bytes.Repeat([]byte{1}, size)
		require.NoError(t, in.Put(b))
		for j := range b {
			b[j] = 2 // the item in flight, or still in the lane
		}
		sum, err := out.GetTimeout(time.Minute)
		require.NoError(t, err)
		assert.Equal(t, size, sum, "item %d", i)
	}
	require.NoError(t, p.JoinTimeout(time.Minute))

	p = mp.NewProcess(putBig, in, size)
	require.NoError(t, p.Start())
	v, err := in.GetTimeout(time.Minute)
	require.NoError(t, err)
	require.NoError(t, p.Join())
	assert.True(t, bytes.Equal(v, bytes.Repeat([]byte{9}, size)), "a child's large Put")
}

func TestQueueClosedByItsOwner(t *testing.T) {
	in, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	out, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	defer out.Close()
	p := mp.NewProcess(echoQueue, in, out, 1)
	require.NoError(t, p.Start())
	require.NoError(t, in.Close())
	var exit *mp.ExitError
	require.ErrorAs(t, p.Join(), &exit, "the child's Get fails instead of hanging")
	assert.Contains(t, exit.Message, "queue is closed")
	assert.True(t, errors.Is(in.Put(1), mp.ErrQueueClosed))
}

func TestQueueOfAny(t *testing.T) {
	ctx, err := mp.GetContext("")
	require.NoError(t, err)
	q, err := ctx.Queue(0)
	require.NoError(t, err)
	defer q.Close()
	require.NoError(t, q.Put("Python"))
	require.NoError(t, q.Put(3))
	v, err := q.Get()
	require.NoError(t, err)
	assert.Equal(t, "Python", v)
	v, err = q.Get()
	require.NoError(t, err)
	assert.Equal(t, 3, v)
	assert.Error(t, q.Put(tagged{}), "an unregistered type in an any")
	_, err = os.Stat(os.DevNull)
	require.NoError(t, err)
}

// Close in the process that made a queue ends the waits of its own
// goroutines too: a Get on the empty queue, a Put on the full one and a
// JoinableQueue's Join return ErrQueueClosed.
func TestCloseEndsLocalWaits(t *testing.T) {
	empty, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	full, err := mp.NewJoinableQueue[int](1)
	require.NoError(t, err)
	require.NoError(t, full.Put(1))
	errs := make(chan error, 3)
	go func() { _, err := empty.Get(); errs <- err }()
	go func() { errs <- full.Put(2) }()
	go func() { errs <- full.Join() }()
	// Close only once all three wait: a call that starts after Close would
	// pass without testing anything.
	eventually(t, 10*time.Second, func() bool {
		return mp.QueueWaiters(empty) == 1 && mp.QueueWaiters(full.Queue) == 2
	}, "three calls wait")
	require.NoError(t, empty.Close())
	require.NoError(t, full.Close())
	for range 3 {
		select {
		case err := <-errs:
			assert.ErrorIs(t, err, mp.ErrQueueClosed)
		case <-time.After(10 * time.Second):
			t.Fatal("a wait did not end when its queue closed")
		}
	}
}

// waitUntilClosed waits in a Get on empty, a Put on full and a Join on
// full at once, and fails unless each ends with ErrQueueClosed.
func waitUntilClosed(empty *mp.Queue[int], full *mp.JoinableQueue[int]) error {
	errs := make(chan error, 3)
	go func() { _, err := empty.Get(); errs <- err }()
	go func() { errs <- full.Put(2) }()
	go func() { errs <- full.Join() }()
	for range 3 {
		if err := <-errs; !errors.Is(err, mp.ErrQueueClosed) {
			return fmt.Errorf("a wait ended with %v, not ErrQueueClosed", err)
		}
	}
	return nil
}

// A Get that timed out leaves nothing behind for the next one: that one
// waits as long as it takes (not the last one's timeout), and an item put
// as the first timed out is not lost.
func TestLocalGetAfterATimeout(t *testing.T) {
	q, err := mp.NewQueue[int](0)
	require.NoError(t, err)
	defer q.Close()
	for range 20 {
		_, err := q.GetTimeout(time.Millisecond)
		assert.ErrorIs(t, err, mp.ErrEmpty)
	}
	got := make(chan int, 1)
	go func() {
		v, err := q.Get()
		assert.NoError(t, err)
		got <- v
	}()
	eventually(t, 10*time.Second, func() bool { return mp.QueueWaiters(q) == 1 }, "the Get waits")
	// Longer than the timeouts before: the Get must still be waiting.
	select {
	case v := <-got:
		t.Fatalf("Get returned %d before anything was put", v)
	case <-time.After(50 * time.Millisecond):
	}
	require.NoError(t, q.Put(7))
	select {
	case v := <-got:
		assert.Equal(t, 7, v)
	case <-time.After(10 * time.Second):
		t.Fatal("the Get did not get the item")
	}
	// Timeouts racing with Puts: every item comes out once.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			assert.NoError(t, q.Put(i))
		}
	}()
	seen := 0
	deadline := time.Now().Add(20 * time.Second)
	for seen < 200 {
		require.True(t, time.Now().Before(deadline), "only %d of 200 items came out", seen)
		if _, err := q.GetTimeout(50 * time.Microsecond); err == nil {
			seen++
		} else {
			require.ErrorIs(t, err, mp.ErrEmpty)
		}
	}
	wg.Wait()
	assert.Equal(t, 0, q.Qsize())
}

func sendBig(c *mp.Connection, size int) error {
	return c.SendBytes(bytes.Repeat([]byte{7}, size))
}

// echoUntilNegative gets ints from in and puts their doubles into out,
// until it gets a negative one.
func echoUntilNegative(in, out *mp.Queue[int]) error {
	for {
		v, err := in.Get()
		if err != nil {
			return err
		}
		if v < 0 {
			return nil
		}
		if err := out.Put(2 * v); err != nil {
			return err
		}
	}
}

func TestBigValues(t *testing.T) {
	const size = 64 << 20
	q, err := mp.NewQueue[[]byte](0)
	require.NoError(t, err)
	defer q.Close()
	p := mp.NewProcess(putBig, q, size)
	require.NoError(t, p.Start())
	v, err := q.GetTimeout(2 * time.Minute)
	require.NoError(t, err)
	require.NoError(t, p.Join())
	assert.Len(t, v, size)
	assert.True(t, bytes.Equal(v, bytes.Repeat([]byte{9}, size)))

	r, w, err := mp.Pipe(false)
	require.NoError(t, err)
	defer r.Close()
	p = mp.NewProcess(sendBig, w, size)
	require.NoError(t, p.Start())
	require.NoError(t, w.Close())
	b, err := r.RecvBytes()
	require.NoError(t, err)
	require.NoError(t, p.Join())
	assert.Len(t, b, size)
	assert.True(t, bytes.Equal(b, bytes.Repeat([]byte{7}, size)))
	_, err = r.RecvBytes()
	assert.Equal(t, io.EOF, err, "the sender exited")
}

func TestHandlesAsRunnerFields(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			q, err := mp.NewJoinableQueue[string](0)
			require.NoError(t, err)
			defer q.Close()
			r, w, err := mp.Pipe(false)
			require.NoError(t, err)
			defer r.Close()
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			g := &greeter{Out: q, Back: w}
			g.Process = ctx.Process(g)
			require.NoError(t, g.Start())
			require.NoError(t, w.Close())
			msg, err := q.GetTimeout(20 * time.Second)
			require.NoError(t, err)
			assert.Equal(t, "hello from "+g.Name, msg)
			var pid int
			require.NoError(t, r.Recv(&pid))
			assert.Equal(t, g.Pid(), pid)
			require.NoError(t, g.Join())
		})
	}
}

func init() { mp.Register(finishThenJoin) }

// finishThenJoin takes n items, marks each done, then joins q: it returns
// once every item of q is done, the parent's included.
func finishThenJoin(q *mp.JoinableQueue[int], n int) error {
	for range n {
		if _, err := q.Get(); err != nil {
			return err
		}
		if err := q.TaskDone(); err != nil {
			return err
		}
	}
	return q.Join()
}

func TestJoinableQueueJoinInAChild(t *testing.T) {
	q, err := mp.NewJoinableQueue[int](0)
	require.NoError(t, err)
	defer q.Close()
	for i := range 4 {
		require.NoError(t, q.Put(i))
	}
	p := startTarget(t, quickMethod, finishThenJoin, q, 3)
	// The child's Join waits for the fourth item, which this process
	// takes and marks done once the child has taken the first three.
	eventually(t, 20*time.Second, func() bool { return q.Qsize() == 1 }, "the child takes three items")
	v, err := q.GetTimeout(20 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, 3, v)
	assert.True(t, p.IsAlive(), "the child's Join waits for the last item")
	require.NoError(t, q.TaskDone())
	require.NoError(t, p.JoinTimeout(20*time.Second))
	code, _ := p.ExitCode()
	assert.Equal(t, 0, code)
}
