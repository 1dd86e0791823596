// Command firstprocess is the book's first_process.py in Go: a target
// function run by two child processes while the main process counts.
package main

import (
	"fmt"
	"log"
	"os"

	mp "github.com/mpgo/multiprocessing"
)

// action is the children's work.
func action(max int) {
	for i := range max {
		fmt.Printf("(%d)子进程（父进程:(%d)）：%d\n", os.Getpid(), os.Getppid(), i)
	}
}

func init() { mp.Register(action) }

func main() {
	mp.Init()
	for i := range 100 {
		fmt.Printf("(%d)主进程: %d\n", os.Getpid(), i)
		if i == 20 {
			mp1 := mp.NewProcess(action, 100)
			if err := mp1.Start(); err != nil {
				log.Fatal(err)
			}
			mp2 := mp.NewProcess(action, 100)
			if err := mp2.Start(); err != nil {
				log.Fatal(err)
			}
			if err := mp2.Join(); err != nil {
				log.Fatal(err)
			}
		}
	}
	fmt.Println("主进程执行完成!")
	// Python joins mp1 when the program exits; Go needs to be told.
	mp.Shutdown()
}
