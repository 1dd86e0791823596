// Command queueclient takes the jobs that queueserver serves, from
// another program (or another machine, over TLS in earnest), until the
// server closes the queue.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"

	mp "github.com/mpgo/multiprocessing"
	mpc "github.com/mpgo/multiprocessing/connection"
)

func main() {
	mp.Init()
	addr := flag.String("addr", "127.0.0.1:50000", "the server's TCP address")
	key := flag.String("key", "secret", "the server's key")
	flag.Parse()

	jobs, err := mpc.DialQueue[string]("tcp", *addr, []byte(*key))
	if err != nil {
		log.Fatal(err)
	}
	defer jobs.Close()
	for {
		job, err := jobs.Get()
		if errors.Is(err, mp.ErrQueueClosed) {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("took", job)
	}
}
