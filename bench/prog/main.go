// Command prog is a small program that uses the library as an application
// would, for the benchmarks that must not measure the test binary (which
// links testify, goleak and their dependencies, and is three times larger):
//
//	prog exit                 returns at once: the floor
//	prog startjoin METHOD N   Start and Join of a no-op target, N times
//	prog start100 METHOD N    100 Starts, then 100 Joins, N times
//	prog rss METHOD N         the memory of an idle child
//
// It prints nanoseconds per operation; for rss, the medians over N children
// of their resident memory (VmRSS) and of its part that is theirs alone
// (private pages, not the binary's pages the page cache shares), in KiB.
package main

import (
	"fmt"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	mp "github.com/mpgo/multiprocessing"
)

func noop() {}

// idle says it runs with a byte on w, then waits to be killed.
func idle(w *os.File) {
	_, _ = w.Write([]byte{1})
	select {}
}

func init() {
	mp.Register(noop)
	mp.Register(idle)
}

func main() {
	mp.Init()
	log.SetFlags(0)
	if len(os.Args) == 2 && os.Args[1] == "exit" {
		return
	}
	if len(os.Args) != 4 {
		log.Fatal("usage: prog exit | prog startjoin|start100|rss METHOD N")
	}
	ctx, err := mp.GetContext(mp.StartMethod(os.Args[2]))
	if err != nil {
		log.Fatal(err)
	}
	n, err := strconv.Atoi(os.Args[3])
	if err != nil || n < 1 {
		log.Fatalf("N: %q is not a positive number", os.Args[3])
	}
	switch os.Args[1] {
	case "startjoin":
		fmt.Println(timeOps(n, func() { startJoin(ctx, 1) }))
	case "start100":
		fmt.Println(timeOps(n, func() { startJoin(ctx, 100) }))
	case "rss":
		rss, private := idleMemory(ctx, n)
		fmt.Println(rss, private)
	default:
		log.Fatalf("unknown measurement %q", os.Args[1])
	}
}

// timeOps runs op once to warm up, then n times, and returns the mean
// nanoseconds of one.
func timeOps(n int, op func()) int64 {
	op()
	start := time.Now()
	for range n {
		op()
	}
	return time.Since(start).Nanoseconds() / int64(n)
}

func startJoin(ctx *mp.Context, count int) {
	procs := make([]*mp.Process, count)
	for i := range procs {
		procs[i] = ctx.Process(noop)
		if err := procs[i].Start(); err != nil {
			log.Fatal(err)
		}
	}
	for _, p := range procs {
		if err := p.Join(); err != nil {
			log.Fatal(err)
		}
	}
}

// idleMemory starts n idle children one after another and returns the
// medians of their resident and private memory, read from /proc once each
// has said it runs.
func idleMemory(ctx *mp.Context, n int) (rss, private float64) {
	var rsss, privates []float64
	for range n {
		r, w, err := os.Pipe()
		if err != nil {
			log.Fatal(err)
		}
		p := ctx.Process(idle, w)
		if err := p.Start(); err != nil {
			log.Fatal(err)
		}
		w.Close()
		// Idle runs once its byte is here (under fork it also holds a copy
		// of w: the end of the stream would never come).
		if _, err := r.Read(make([]byte, 1)); err != nil {
			log.Fatal(err)
		}
		r.Close()
		rss, private, err := memory(p.Pid())
		if err != nil {
			log.Fatal(err)
		}
		rsss, privates = append(rsss, rss), append(privates, private)
		_ = p.Kill()
		_ = p.Join()
	}
	return median(rsss), median(privates)
}

// memory reads a process's resident memory and the private part of it, in
// KiB, from /proc/PID/smaps_rollup.
func memory(pid int) (rss, private float64, err error) {
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(rollup)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kib, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "Rss:":
			rss = kib
		case "Private_Clean:", "Private_Dirty:":
			private += kib
		}
	}
	return rss, private, nil
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
