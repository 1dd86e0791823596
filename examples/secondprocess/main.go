// Command secondprocess is the book's second_process.py in Go: instead of a
// target function, a type that embeds *mp.Process and has a Run method,
// as a Python class derives from Process and overrides run().
package main

import (
	"fmt"
	"log"
	"os"

	mp "github.com/mpgo/multiprocessing"
)

// MyProcess counts to Max in a child process.
type MyProcess struct {
	*mp.Process
	Max int
}

// NewMyProcess is the Python class's __init__.
func NewMyProcess(max int) *MyProcess {
	m := &MyProcess{Max: max}
	m.Process = mp.NewProcess(m)
	return m
}

// Run is the child's work: Python's overridden run().
func (m *MyProcess) Run() error {
	for i := range m.Max {
		fmt.Printf("(%d)子进程（父进程:(%d)）：%d\n", os.Getpid(), os.Getppid(), i)
	}
	return nil
}

func init() { mp.Register(&MyProcess{}) }

func main() {
	mp.Init()
	for i := range 100 {
		fmt.Printf("(%d)主进程: %d\n", os.Getpid(), i)
		if i == 20 {
			mp1 := NewMyProcess(100)
			if err := mp1.Start(); err != nil {
				log.Fatal(err)
			}
			mp2 := NewMyProcess(100)
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
