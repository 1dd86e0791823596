package multiprocessing_test

import (
	"errors"
	"fmt"

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

func init() {
	mp.Register(square)
	mp.Register(&Worker{})
}

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

// Arguments are checked against the target's parameters before any process
// exists.
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
