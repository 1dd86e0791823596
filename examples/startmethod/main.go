// Command startmethod is the book's start_method_test.py in Go: the spawn
// start method set once for the program, and a queue through which the
// child sends a string back.
package main

import (
	"fmt"
	"log"
	"os"

	mp "github.com/mpgo/multiprocessing"
)

// foo is the child's work.
func foo(q *mp.Queue[string]) error {
	fmt.Printf("被启动的新进程: (%d)\n", os.Getpid())
	return q.Put("Python")
}

func init() { mp.Register(foo) }

func main() {
	mp.Init()
	// Use spawn to start processes.
	if err := mp.SetStartMethod(mp.Spawn, false); err != nil {
		log.Fatal(err)
	}
	q, err := mp.NewQueue[string](0)
	if err != nil {
		log.Fatal(err)
	}
	p := mp.NewProcess(foo, q)
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	// Get the message from the queue.
	msg, err := q.Get()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg)
	if err := p.Join(); err != nil {
		log.Fatal(err)
	}
}
