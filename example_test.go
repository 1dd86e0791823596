package multiprocessing_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	mp "github.com/mpgo/multiprocessing"
)

func square(x int) error {
	if x < 0 {
		return errors.New("negative")
	}
	return nil
}

// Worker is a Runner: the analogue of a Process subclass overriding run().
type Worker struct {
	*mp.Process
	Jobs int
}

func (w *Worker) Run() error {
	if w.Jobs == 0 {
		return errors.New("no jobs")
	}
	return nil
}

// lengths gets words until an empty one, and puts their lengths.
func lengths(words *mp.Queue[string], out *mp.Queue[int]) error {
	for {
		w, err := words.Get()
		if err != nil || w == "" {
			return err
		}
		if err := out.Put(len(w)); err != nil {
			return err
		}
	}
}

// shout answers each message on c in capitals, until c closes.
func shout(c *mp.Connection) error {
	for {
		var s string
		if err := c.Recv(&s); err != nil {
			return nil
		}
		if err := c.Send(strings.ToUpper(s)); err != nil {
			return err
		}
	}
}

func init() {
	mp.Register(square)
	mp.Register(&Worker{})
	mp.Register(lengths)
	mp.Register(shout)
	mp.Register(double)
}

func double(x int) int { return 2 * x }

// A target function with its arguments, started in a child and joined.
func ExampleNewProcess() {
	p := mp.NewProcess(square, 7)
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	err := p.Join()
	code, _ := p.ExitCode()
	fmt.Println(err, code)
	// Output: <nil> 0
}

// The child's returned error comes back as an *ExitError with exit code 1.
func ExampleExitError() {
	p := mp.NewProcess(square, -1)
	_ = p.Start()
	var exit *mp.ExitError
	if errors.As(p.Join(), &exit) {
		fmt.Println(exit.Code, exit.Message)
	}
	// Output: 1 negative
}

// A Runner embeds *Process to get Start, Join, … on itself; its exported
// fields travel to the child.
func ExampleRunner() {
	w := &Worker{Jobs: 3}
	w.Process = mp.NewProcess(w)
	if err := w.Start(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(w.Join())
	// Output: <nil>
}

// A context fixes the start method of the processes it makes.
func ExampleGetContext() {
	ctx, err := mp.GetContext(mp.Spawn)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := ctx.Process(square, 2)
	_ = p.Start()
	fmt.Println(p.Join(), ctx.StartMethod())
	// Output: <nil> spawn
}

func ExampleProcess_Start() {
	err := mp.NewProcess(square, "seven").Start()
	fmt.Println(errors.Is(err, mp.ErrBadArgs))
	fmt.Println(err)
	// Output:
	// true
	// multiprocessing: arguments do not fit the target: target github.com/mpgo/multiprocessing_test.square: argument 1: have string, want int
}

// Done is Python's sentinel: a channel to select on.
func ExampleProcess_Done() {
	p := mp.NewProcess(sleepForever)
	_ = p.Start()
	_ = p.Terminate()
	<-p.Done()
	code, _ := p.ExitCode()
	fmt.Println(code)
	// Output: -15
}

// A block of memory that a child finds by its name, as any other program,
// a Python one with multiprocessing.shared_memory included, could. (It
// prints "pong" on Linux; other systems have no blocks yet.)
func ExampleCreateSharedMemory() {
	m, err := mp.CreateSharedMemory("", 8) // "": a fresh name, psm_…
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Unlink() // only the creator removes the name
	defer m.Close()
	copy(m.Buf(), "ping")
	// The child opens the block by name, checks it starts with "ping" and
	// writes "pong" after it.
	p := mp.NewProcess(answerInSharedMemory, m.Name(), "ping", "pong")
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Join(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(m.Buf()[4:8]))
}

// addHits adds 1 to hits n times, each under the Value's lock.
func addHits(hits *mp.Value[int64], n int) error {
	for range n {
		if err := hits.Update(func(h *int64) { *h++ }); err != nil {
			return err // ErrOwnerDied: a process died in the middle of an Update
		}
	}
	return nil
}

func init() { mp.Register(addHits) }

// Queues passed as arguments connect the parent and a child.
func ExampleNewQueue() {
	words, _ := mp.NewQueue[string](0)
	out, _ := mp.NewQueue[int](0)
	defer words.Close()
	defer out.Close()
	p := mp.NewProcess(lengths, words, out)
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range []string{"fork", "spawn", "forkserver", ""} {
		_ = words.Put(w)
	}
	for range 3 {
		n, _ := out.Get()
		fmt.Print(n, " ")
	}
	fmt.Println(p.Join())
	// Output: 4 5 10 <nil>
}

// A duplex pipe: one end stays, the other goes to the child.
func ExamplePipe() {
	ours, theirs, _ := mp.Pipe(true)
	p := mp.NewProcess(shout, theirs)
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	theirs.Close() // the child has its own copy
	_ = ours.Send("hello")
	var reply string
	_ = ours.Recv(&reply)
	fmt.Println(reply)
	ours.Close() // the child's Recv sees the end and returns
	fmt.Println(p.Join())
	// Output:
	// HELLO
	// <nil>
}

// A Pool maps a registered function over items in worker processes, and
// gives the results in order; the call is cancelled with its context.
func ExampleMap() {
	p, err := mp.NewPool(mp.PoolOptions{Processes: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		p.Close()
		p.Join()
	}()
	doubled, err := mp.Map[int, int](context.Background(), p, double, []int{1, 2, 3, 4}, 0)
	fmt.Println(doubled, err)
	for d, err := range mp.Imap[int, int](context.Background(), p, double, slices.Values([]int{5, 6}), 1) {
		fmt.Println(d, err)
	}
	// Output:
	// [2 4 6 8] <nil>
	// 10 <nil>
	// 12 <nil>
}
