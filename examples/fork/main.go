// Command fork is the book's fork_test.py in Go.
//
// Python's os.fork() copies the running interpreter and both copies go on
// from the same line. A Go runtime cannot be copied that way (only the
// forking thread would survive), so the part after the fork that the child
// runs becomes a registered function, started with the fork start method:
// the child inherits the parent's descriptors, environment and working
// directory, as a forked process would.
package main

import (
	"fmt"
	"log"
	"os"

	mp "github.com/mpgo/multiprocessing"
)

// child is what fork_test.py's child runs after os.fork() returned 0.
func child() {
	fmt.Printf("进程进入：%d\n", os.Getpid())
	fmt.Printf("子进程，其ID为 (%d), 父进程ID为 (%d)\n", os.Getpid(), os.Getppid())
	fmt.Printf("进程结束：%d\n", os.Getpid())
}

func init() { mp.Register(child) }

func main() {
	mp.Init()
	fmt.Printf("父进程（%d）开始执行\n", os.Getpid())
	ctx, err := mp.GetContext(mp.Fork)
	if err != nil {
		log.Fatal(err)
	}
	p := ctx.Process(child)
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("进程进入：%d\n", os.Getpid())
	fmt.Printf("我 (%d) 创建的子进程ID为 (%d).\n", os.Getpid(), p.Pid())
	if err := p.Join(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("进程结束：%d\n", os.Getpid())
}
