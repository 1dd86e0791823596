// Command context is the book's Context_test.py in Go: the same as
// startmethod, but through a context for the fork start method, which
// leaves the program's default alone.
package main

import (
	"fmt"
	"log"
	"os"

	mp "github.com/mpgo/multiprocessing"
)

// foo is the child's work.
func foo(q *mp.Queue[any]) error {
	fmt.Printf("被启动的新进程: (%d)\n", os.Getpid())
	return q.Put("Python")
}

func init() { mp.Register(foo) }

func main() {
	mp.Init()
	ctx, err := mp.GetContext(mp.Fork)
	if err != nil {
		log.Fatal(err)
	}
	q, err := ctx.Queue(0)
	if err != nil {
		log.Fatal(err)
	}
	p := ctx.Process(foo, q)
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	msg, err := q.Get()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg)
	if err := p.Join(); err != nil {
		log.Fatal(err)
	}
}
