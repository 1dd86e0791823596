//go:build unix

// The examples of what Windows does not have (yet): the fork and
// forkserver methods, locks and shared values.

package multiprocessing_test

import (
	"errors"
	"fmt"

	mp "github.com/mpgo/multiprocessing"
)

// Arguments are checked against the target's parameters before any process
// exists.
// The forkserver context keeps children waiting, already initialised, so
// that a start costs a message: here the first Start starts the server,
// the others are served by warm children.
func ExampleGetContext_forkserver() {
	ctx, err := mp.GetContext(mp.Forkserver)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 3 {
		p := ctx.Process(square, i)
		if err := p.Start(); err != nil {
			fmt.Println(err) // ErrUnsupported elsewhere than on Linux
			return
		}
		fmt.Println(p.Join())
	}
	// Output:
	// <nil>
	// <nil>
	// <nil>
}

// Four processes count into one Value, and lose no increment.
func ExampleNewValue() {
	hits, err := mp.NewValue[int64](0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hits.Close()
	var ps []*mp.Process
	for range 4 {
		p := mp.NewProcess(addHits, hits, 10_000)
		if err := p.Start(); err != nil {
			fmt.Println(err)
			return
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Join(); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(hits.Load())
	// Output: 40000
}

// A lock whose holder was killed is taken over, with ErrOwnerDied, instead
// of being held for ever.
func ExampleLock_Acquire() {
	l, err := mp.NewLock()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	if err := l.Acquire(); errors.Is(err, mp.ErrOwnerDied) {
		fmt.Println("the last holder died: check what the lock guards")
	}
	defer l.Release()
	fmt.Println(l.Locked())
	// Output: true
}
