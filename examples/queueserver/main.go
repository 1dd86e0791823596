// Command queueserver serves a queue of jobs to other programs, as
// Python's managers serve a queue to other machines: it puts ten jobs in,
// serves the queue on -addr to clients that know -key (see queueclient),
// and ends once every job has been taken.
//
//	go run ./examples/queueserver -addr 127.0.0.1:50000 &
//	go run ./examples/queueclient -addr 127.0.0.1:50000
package main

import (
	"flag"
	"fmt"
	"log"
	"time"

	mp "github.com/mpgo/multiprocessing"
	mpc "github.com/mpgo/multiprocessing/connection"
)

func main() {
	mp.Init()
	addr := flag.String("addr", "127.0.0.1:50000", "TCP address to serve on (port 0: any free one)")
	key := flag.String("key", "secret", "the key clients must know")
	flag.Parse()

	jobs, err := mp.NewQueue[string](0)
	if err != nil {
		log.Fatal(err)
	}
	for i := range 10 {
		if err := jobs.Put(fmt.Sprintf("job %d", i)); err != nil {
			log.Fatal(err)
		}
	}
	l, err := mpc.Listen("tcp", *addr, []byte(*key))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("serving on", l.Addr())
	served := make(chan error, 1)
	go func() { served <- mpc.Serve(jobs, l) }()
	for !jobs.Empty() {
		time.Sleep(20 * time.Millisecond)
	}
	jobs.Close() // Serve returns, and clients still connected get ErrQueueClosed
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	l.Close()
	fmt.Println("every job taken")
}
