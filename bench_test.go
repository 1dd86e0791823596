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

func BenchmarkQueueRoundTrip(b *testing.B) {
	in, err := mp.NewQueue[int](0)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := mp.NewQueue[int](0)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
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

// pythonRoundTrips times n round trips in Python, after one to warm up.
const pythonRoundTrips = `
import multiprocessing as mp, sys, time

def echo_queue(i, o):
    while True:
        v = i.get()
        if v is None:
            return
        o.put(v)

def echo_pipe(c):
    while True:
        v = c.recv()
        if v is None:
            return
        c.send(v)

if __name__ == '__main__':
    n, kind = int(sys.argv[1]), sys.argv[2]
    ctx = mp.get_context('fork')
    if kind == 'queue':
        i, o = ctx.Queue(), ctx.Queue()
        p = ctx.Process(target=echo_queue, args=(i, o))
        def trip(k):
            i.put(k)
            o.get()
        stop = lambda: i.put(None)
    else:
        a, c = ctx.Pipe()
        p = ctx.Process(target=echo_pipe, args=(c,))
        def trip(k):
            a.send(k)
            a.recv()
        stop = lambda: a.send(None)
    p.start()
    trip(0)
    t = time.perf_counter_ns()
    for k in range(n):
        trip(k)
    elapsed = time.perf_counter_ns() - t
    stop()
    p.join()
    print(elapsed)
`

func benchPython(b *testing.B, kind string) {
	ns := runPython(b, pythonRoundTrips, kind)
	b.ReportMetric(ns/float64(b.N), "ns/op")
}

// runPython runs script with b.N and arg as its arguments and returns the
// number it prints; it skips the benchmark where python3 is missing.
func runPython(b *testing.B, script, arg string) float64 {
	python, err := exec.LookPath("python3")
	if err != nil {
		b.Skip("python3 is not installed")
	}
	path := filepath.Join(b.TempDir(), "bench.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command(python, path, strconv.Itoa(b.N), arg).Output()
	if err != nil {
		b.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

func BenchmarkPythonQueueRoundTrip(b *testing.B) { benchPython(b, "queue") }

func BenchmarkPythonPipeRoundTrip(b *testing.B) { benchPython(b, "pipe") }

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

// BenchmarkExecFloor is the floor for BenchmarkStartJoin: the same binary
// started by os/exec, returning at once (a marker it refuses).
func BenchmarkExecFloor(b *testing.B) {
	for range b.N {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "MPGO_CHILD=refused")
		_ = cmd.Run()
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

// pythonFirstLine prints the median time from start() to the target's
// first line, over n starts after one to warm up, for a start method.
const pythonFirstLine = `
import multiprocessing as mp, statistics, sys, time

def first_line(q):
    q.put(time.monotonic_ns())

if __name__ == '__main__':
    n, method = int(sys.argv[1]), sys.argv[2]
    ctx = mp.get_context(method)
    q = ctx.SimpleQueue()
    lat = []
    for k in range(n + 1):
        p = ctx.Process(target=first_line, args=(q,))
        t = time.monotonic_ns()
        p.start()
        lat.append(q.get() - t)
        p.join()
    print(statistics.median(lat[1:]))
`

// BenchmarkPythonStartToFirstLine is BenchmarkStartToFirstLine in Python.
func BenchmarkPythonStartToFirstLine(b *testing.B) {
	for _, method := range []string{"spawn", "fork", "forkserver"} {
		b.Run(method, func(b *testing.B) {
			ns := runPython(b, pythonFirstLine, method)
			b.ReportMetric(ns/1e3, "µs-to-first-line")
		})
	}
}
