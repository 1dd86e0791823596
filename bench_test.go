//go:build unix

package multiprocessing_test

import (
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	mp "github.com/mpgo/multiprocessing"
)

// The benchmarks measure round trips parent → child → parent, ours and,
// as the baseline in the same run, Python's multiprocessing doing the
// same: compare BenchmarkQueueRoundTrip with BenchmarkPythonQueueRoundTrip.

// benchQueues makes two unbounded queues that close when b ends.
func benchQueues(b *testing.B) (in, out *mp.Queue[int]) {
	in, err := mp.NewQueue[int](0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close() })
	out, err = mp.NewQueue[int](0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { out.Close() })
	return in, out
}

func BenchmarkQueueRoundTrip(b *testing.B) {
	in, out := benchQueues(b)
	p := mp.NewProcess(echoQueue, in, out, b.N+1)
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	roundTrip := func(i int) {
		if err := in.Put(i); err != nil {
			b.Fatal(err)
		}
		if _, err := out.Get(); err != nil {
			b.Fatal(err)
		}
	}
	roundTrip(0)
	b.ResetTimer()
	for i := range b.N {
		roundTrip(i)
	}
	b.StopTimer()
	if err := p.Join(); err != nil {
		b.Fatal(err)
	}
}

// poolWorkers is how many children wait on one queue in
// BenchmarkQueueWorkers and its Python twin.
const poolWorkers = 8

// BenchmarkQueueWorkers is a Queue round trip with poolWorkers children
// waiting on the queue, as the workers of a pool do: each item should wake
// one of them, not all.
func BenchmarkQueueWorkers(b *testing.B) {
	in, out := benchQueues(b)
	var ps []*mp.Process
	for range poolWorkers {
		p := mp.NewProcess(echoUntilNegative, in, out)
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
	}
	roundTrip := func(i int) {
		if err := in.Put(i); err != nil {
			b.Fatal(err)
		}
		if _, err := out.Get(); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 10 * poolWorkers {
		roundTrip(i) // every worker has started and waits
	}
	b.ResetTimer()
	for i := range b.N {
		roundTrip(i)
	}
	b.StopTimer()
	for range poolWorkers {
		if err := in.Put(-1); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range ps {
		if err := p.Join(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPipeRoundTrip(b *testing.B) {
	ours, theirs, err := mp.Pipe(true)
	if err != nil {
		b.Fatal(err)
	}
	p := mp.NewProcess(echoPipe, theirs)
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	theirs.Close()
	var s string
	roundTrip := func() {
		if err := ours.Send("x"); err != nil {
			b.Fatal(err)
		}
		if err := ours.Recv(&s); err != nil {
			b.Fatal(err)
		}
	}
	roundTrip()
	b.ResetTimer()
	for range b.N {
		roundTrip()
	}
	b.StopTimer()
	ours.Close()
	if err := p.Join(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkQueueResult is how workers hand back results: the parent asks
// over a Pipe and the child answers through a Queue, which the parent reads.
func BenchmarkQueueResult(b *testing.B) {
	ours, theirs, err := mp.Pipe(true)
	if err != nil {
		b.Fatal(err)
	}
	results, err := mp.NewQueue[int](0)
	if err != nil {
		b.Fatal(err)
	}
	defer results.Close()
	p := mp.NewProcess(answerThroughQueue, theirs, results)
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	theirs.Close()
	ask := func(i int) {
		if err := ours.Send(i); err != nil {
			b.Fatal(err)
		}
		if _, err := results.Get(); err != nil {
			b.Fatal(err)
		}
	}
	ask(0)
	b.ResetTimer()
	for i := range b.N {
		ask(i)
	}
	b.StopTimer()
	ours.Close()
	if err := p.Join(); err != nil {
		b.Fatal(err)
	}
}

func init() { mp.Register(answerThroughQueue) }

// answerThroughQueue puts each number it receives on c into results, until
// c ends.
func answerThroughQueue(c *mp.Connection, results *mp.Queue[int]) error {
	for {
		var v int
		if err := c.Recv(&v); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := results.Put(v); err != nil {
			return err
		}
	}
}

// BenchmarkStartJoin is Start and Join of a target that returns at once.
func BenchmarkStartJoin(b *testing.B) {
	for _, method := range methods {
		b.Run(string(method), func(b *testing.B) {
			ctx, err := mp.GetContext(method)
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				p := ctx.Process(noop)
				if err := p.Start(); err != nil {
					b.Fatal(err)
				}
				if err := p.Join(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExecFloor is the floor for BenchmarkStartJoin: os/exec starts
// and waits for a program that returns at once, the library's own binary
// (this test binary, whose main exits before it runs a test), a small
// program using the library, or a minimal Go program.
func BenchmarkExecFloor(b *testing.B) { benchExecFloor(b, 1) }

// BenchmarkExecFloor100 is the floor for BenchmarkStart100: 100 programs
// that return at once, started together, then waited for.
func BenchmarkExecFloor100(b *testing.B) { benchExecFloor(b, 100) }

func benchExecFloor(b *testing.B, count int) {
	for _, floor := range floors {
		b.Run(floor, func(b *testing.B) {
			argv, env := floorCommand(b, floor)
			for range b.N {
				cmds := make([]*exec.Cmd, count)
				for i := range cmds {
					cmds[i] = exec.Command(argv[0], argv[1:]...)
					cmds[i].Env = env
					if err := cmds[i].Start(); err != nil {
						b.Fatal(err)
					}
				}
				for _, cmd := range cmds {
					if err := cmd.Wait(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// floors: this test binary; a small program that uses the library as an
// application would (bench/prog, half this binary's size); a Go
// program whose main is empty.
var floors = []string{"own", "program", "minimal"}

// floorCommand returns the command line and environment of a floor, told
// to return at once.
func floorCommand(b *testing.B, floor string) ([]string, []string) {
	switch floor {
	case "own":
		return []string{os.Args[0]}, append(os.Environ(), helperSetting("exit"))
	case "program":
		return []string{program(b), "exit"}, os.Environ()
	}
	return []string{built(b, "minimal", "./bench/compare/minimal")}, os.Environ()
}

// program returns bench/prog, built once.
func program(b *testing.B) string { return built(b, "prog", "./bench/prog") }

// built builds pkg, a path from the module's root, once per test binary,
// and returns the program; it skips the benchmark where that fails. Where
// MPGO_BENCH_<NAME> names a program already built (bench/compare builds
// them once for all its runs), that is the program.
func built(b *testing.B, name, pkg string) string {
	if bin := os.Getenv("MPGO_BENCH_" + strings.ToUpper(name)); bin != "" {
		return bin
	}
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if bin, ok := builds[name]; ok {
		return bin
	}
	if buildsDir == "" {
		dir, err := os.MkdirTemp("", "mpgo-bench-")
		if err != nil {
			b.Fatal(err)
		}
		buildsDir = dir
	}
	bin := filepath.Join(buildsDir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Skipf("go build %s: %v: %s", pkg, err, out)
	}
	builds[name] = bin
	return bin
}

// runProgram runs bench/prog with args and returns the numbers it prints.
func runProgram(b *testing.B, args ...string) []float64 {
	out, err := exec.Command(program(b), args...).Output()
	if err != nil {
		b.Fatalf("prog %v: %v", args, err)
	}
	var nums []float64
	for _, f := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			b.Fatalf("prog %v printed %q", args, out)
		}
		nums = append(nums, v)
	}
	return nums
}

// BenchmarkProgram is BenchmarkStartJoin and BenchmarkStart100 in
// bench/prog, a program of an application's size, whose exec costs half
// what this test binary's does.
func BenchmarkProgram(b *testing.B) {
	for _, what := range []string{"startjoin", "start100"} {
		for _, method := range methods {
			b.Run(what+"/"+string(method), func(b *testing.B) {
				ns := runProgram(b, what, string(method), strconv.Itoa(b.N))
				b.ReportMetric(ns[0], "ns/op")
			})
		}
	}
}

// BenchmarkStart100 starts 100 processes at once, then joins them all.
func BenchmarkStart100(b *testing.B) {
	for _, method := range methods {
		b.Run(string(method), func(b *testing.B) {
			ctx, err := mp.GetContext(method)
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				procs := make([]*mp.Process, 100)
				for i := range procs {
					procs[i] = ctx.Process(noop)
					if err := procs[i].Start(); err != nil {
						b.Fatal(err)
					}
				}
				for _, p := range procs {
					if err := p.Join(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func init() { mp.Register(firstLine) }

// firstLine writes, first thing, the time on the system's monotonic clock.
func firstLine(w *os.File) error {
	now := monotonic()
	defer w.Close()
	return binary.Write(w, binary.BigEndian, now)
}

// monotonic reads CLOCK_MONOTONIC, which every process on the machine
// shares (time.Now's monotonic reading counts from the process's start).
func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// BenchmarkStartToFirstLine measures the time from the call of Start to
// the first line of the target, and reports its median. Under forkserver,
// each start waits (off the clock) for the warm children to be ready, as a
// program that does not start children back to back finds them (on two
// cores, the exec of the replacement of the one taken before would
// otherwise compete with the child measured).
func BenchmarkStartToFirstLine(b *testing.B) {
	for _, method := range methods {
		b.Run(string(method), func(b *testing.B) {
			ctx, err := mp.GetContext(method)
			if err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			for range b.N {
				if method == mp.Forkserver {
					b.StopTimer()
					waitWarm(b)
					b.StartTimer()
				}
				r, w, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				start := monotonic()
				p := ctx.Process(firstLine, w)
				if err := p.Start(); err != nil {
					b.Fatal(err)
				}
				w.Close()
				var line int64
				if err := binary.Read(r, binary.BigEndian, &line); err != nil && err != io.EOF {
					b.Fatal(err)
				}
				r.Close()
				lat = append(lat, time.Duration(line-start))
				if err := p.Join(); err != nil {
					b.Fatal(err)
				}
			}
			reportMedian(b, lat, "µs-to-first-line")
		})
	}
}

// waitWarm waits until the forkserver has all the warm children it keeps
// for this process ready.
func waitWarm(b *testing.B) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := mp.ForkserverWarm()
		if err != nil {
			b.Fatal(err)
		}
		if n >= mp.ForkserverPool {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("no warm child within 20s")
		}
		time.Sleep(time.Millisecond)
	}
}

func reportMedian(b *testing.B, lat []time.Duration, unit string) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/float64(time.Microsecond), unit)
}

// BenchmarkIdleChildRSS reports the memory of an idle child of bench/prog
// (a program of an application's size; a child of this test binary is
// twice as large): medians over b.N children of its resident memory and
// of its private part, which excludes the binary's pages that every
// process running it shares.
func BenchmarkIdleChildRSS(b *testing.B) {
	for _, method := range methods {
		b.Run(string(method), func(b *testing.B) {
			kib := runProgram(b, "rss", string(method), strconv.Itoa(b.N))
			b.ReportMetric(kib[0]/1024, "MiB-rss")
			b.ReportMetric(kib[1]/1024, "MiB-private")
		})
	}
}
