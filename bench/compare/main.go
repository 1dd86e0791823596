// Command compare measures the library against Python's multiprocessing
// and against the floor (exec and wait of a program that returns at once)
// in one run on one machine, and prints a table of medians and ratios.
//
// Run it from the repository's root:
//
//	go run ./bench/compare            # 5 rounds, about two minutes on 2 cores
//	go run ./bench/compare -rounds 9  # steadier medians
//
// It builds the package's test binary once (without -race), then runs its
// benchmarks (BenchmarkStartJoin and the others in bench_test.go, their
// Python twins and the floors) one after another, each a few iterations,
// round after round, so that a slow moment of the machine touches all of
// them alike. Each figure is the median over the rounds. Python's columns
// are empty where python3 is missing.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// A bench is one benchmark of the test binary, run n times per round; unit
// is the metric read from its result line.
type bench struct {
	name string // as -test.bench takes it, one level per slash: StartJoin/spawn
	n    int
	unit string
}

// A row of the table: ours, and what it is compared with.
type row struct {
	what           string
	ours, python   bench
	floor, minimal bench // zero when there is no floor
	scale          float64
	unit           string
}

func rows() []row {
	var rs []row
	methods := []string{"spawn", "fork", "forkserver"}
	// Start+Join one at a time, and 100 at once: in the test binary and in
	// bench/prog, with the exec of each (returning at once) as the floor.
	for _, kind := range []struct {
		what, ours, program, python, floor string
		n                                  int
	}{
		{"Start+Join", "StartJoin", "Program/startjoin", "PythonStartJoin", "ExecFloor", 10},
		{"100 Start+Join at once", "Start100", "Program/start100", "PythonStart100", "ExecFloor100", 1},
	} {
		own := bench{kind.floor + "/own", kind.n, "ns/op"}
		prog := bench{kind.floor + "/program", kind.n, "ns/op"}
		minimal := bench{kind.floor + "/minimal", kind.n, "ns/op"}
		for _, m := range methods {
			python := bench{kind.python + "/" + m, kind.n, "ns/op"}
			rs = append(rs,
				row{kind.what + ", " + m + ", test binary", bench{kind.ours + "/" + m, kind.n, "ns/op"}, python, own, minimal, 1e6, "ms"},
				row{kind.what + ", " + m + ", program", bench{kind.program + "/" + m, kind.n, "ns/op"}, python, prog, minimal, 1e6, "ms"})
		}
	}
	for _, m := range methods {
		rs = append(rs, row{"Start to first line, " + m,
			bench{"StartToFirstLine/" + m, 15, "µs-to-first-line"}, bench{"PythonStartToFirstLine/" + m, 15, "µs-to-first-line"},
			bench{}, bench{}, 1e3, "ms"})
	}
	// Round trips: enough of them that a child's first milliseconds, when
	// a Go runtime is still settling, do not weigh (at 2,000 they do).
	rs = append(rs,
		row{"Queue round trip", bench{"QueueRoundTrip", 20000, "ns/op"}, bench{"PythonQueueRoundTrip", 20000, "ns/op"}, bench{}, bench{}, 1e3, "µs"},
		row{"Queue round trip, 8 workers waiting", bench{"QueueWorkers", 20000, "ns/op"}, bench{"PythonQueueWorkers", 20000, "ns/op"}, bench{}, bench{}, 1e3, "µs"},
		row{"Pipe round trip", bench{"PipeRoundTrip", 20000, "ns/op"}, bench{"PythonPipeRoundTrip", 20000, "ns/op"}, bench{}, bench{}, 1e3, "µs"},
		row{"Result: Pipe ask, Queue answer", bench{"QueueResult", 20000, "ns/op"}, bench{"PythonQueueResult", 20000, "ns/op"}, bench{}, bench{}, 1e3, "µs"},
	)
	// Bulk work: small items in flight at once, per item; large items, per
	// item, against one copy of it in memory as the floor.
	for _, items := range []struct{ what, bench string }{{"ints", "QueuePipelined"}, {"records", "QueuePipelinedRecords"}} {
		for _, consumers := range []string{"1", "4"} {
			rs = append(rs, row{"Queue pipelined, per item, " + items.what + ", consumers: " + consumers,
				bench{items.bench + "/" + consumers, 20000, "ns/op"}, bench{"Python" + items.bench + "/" + consumers, 20000, "ns/op"},
				bench{}, bench{}, 1e3, "µs"})
		}
	}
	for _, size := range []struct {
		name string
		n    int
	}{{"1MiB", 200}, {"64MiB", 5}} {
		for _, kind := range bulkKinds {
			rs = append(rs, row{kind.what + ", a " + size.name + " []byte to a child",
				bench{kind.bench + "/" + size.name, size.n, "ns/op"}, bench{"Python" + kind.bench + "/" + size.name, size.n, "ns/op"},
				bench{"CopyFloor/" + size.name, size.n, "ns/op"}, bench{}, 1e6, "ms"})
		}
		rs = append(rs, row{"two copies of a " + size.name + " []byte, one on each core", bench{"CopyAcrossCores/" + size.name, size.n, "ns/op"},
			bench{}, bench{"CopyFloor/" + size.name, size.n, "ns/op"}, bench{}, 1e6, "ms"})
	}
	// The Pool: a pool of 2 to its first result, against Python's fork
	// Pool; the rest with a forkserver pool against Python's fork Pool.
	for _, m := range methods {
		rs = append(rs, row{"Pool of 2 to its first Apply, " + m,
			bench{"PoolFirstApply/" + m, 10, "ns/op"}, bench{"PythonPoolFirstApply/" + m, 10, "ns/op"}, bench{}, bench{}, 1e6, "ms"})
	}
	rs = append(rs,
		row{"Pool Map of 100,000 ints", bench{"PoolMap", 20, "ns/op"}, bench{"PythonPoolMap", 20, "ns/op"}, bench{}, bench{}, 1e6, "ms"},
		row{"Pool Imap of 10,000 ints, chunksize 1", bench{"PoolImap", 5, "ns/op"}, bench{"PythonPoolImap", 5, "ns/op"}, bench{}, bench{}, 1e6, "ms"},
		row{"Pool ApplyAsync then Get", bench{"PoolApplyAsyncGet", 2000, "ns/op"}, bench{"PythonPoolApplyAsyncGet", 2000, "ns/op"}, bench{}, bench{}, 1e3, "µs"},
		row{"Pool CPU-bound tasks, 2 workers against 1", bench{"PoolCPUBound/2-workers", 2, "ns/op"}, bench{}, bench{"PoolCPUBound/1-worker", 2, "ns/op"}, bench{}, 1e6, "ms"},
	)
	// Synchronisation: Python's fork context, ours forked children.
	rs = append(rs,
		row{"Lock Acquire+Release, uncontended", bench{"LockUncontended", 1_000_000, "ns/op"}, bench{"PythonLockUncontended", 1_000_000, "ns/op"}, bench{}, bench{}, 1, "ns"},
		row{"Value +1 under its lock, 2 processes, per increment", bench{"ValueIncrementTwoProcesses", 200_000, "ns/op"}, bench{"PythonValueIncrementTwoProcesses", 200_000, "ns/op"}, bench{}, bench{}, 1, "ns"},
		row{"Event ping-pong between 2 processes", bench{"EventPingPong", 10_000, "ns/op"}, bench{"PythonEventPingPong", 10_000, "ns/op"}, bench{}, bench{}, 1e3, "µs"},
	)
	for _, m := range methods {
		rs = append(rs,
			row{"Idle child resident memory, " + m + ", program",
				bench{"IdleChildRSS/" + m, 3, "MiB-rss"}, bench{"PythonIdleChildRSS/" + m, 3, "MiB-rss"}, bench{}, bench{}, 1, "MiB"},
			row{"  of it private to the child, " + m,
				bench{"IdleChildRSS/" + m, 3, "MiB-private"}, bench{"PythonIdleChildRSS/" + m, 3, "MiB-private"}, bench{}, bench{}, 1, "MiB"})
	}
	return rs
}

// bulkKinds are the ways large items go to a child: a Queue, a Pipe, and
// a Pipe whose child receives into a buffer it keeps (Python's
// recv_bytes_into).
var bulkKinds = []struct{ what, bench string }{
	{"Queue", "QueueBytes"},
	{"Pipe", "PipeBytes"},
	{"Pipe received into a buffer", "PipeBytesInto"},
}

func main() {
	rounds := flag.Int("rounds", 5, "rounds of every benchmark; each figure is the median over them")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("compare: ")

	dir, err := os.MkdirTemp("", "mpgo-compare-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "multiprocessing.test")
	log.Print("building the test binary")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		log.Fatalf("go test -c (run this from the repository's root): %v", err)
	}

	// The benchmarks' own programs, built once here rather than in each run.
	for name, pkg := range map[string]string{"prog": "./bench/prog", "minimal": "./bench/compare/minimal"} {
		path := filepath.Join(dir, name)
		build := exec.Command("go", "build", "-o", path, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			log.Fatalf("go build %s: %v", pkg, err)
		}
		os.Setenv("MPGO_BENCH_"+strings.ToUpper(name), path)
	}

	rs := rows()
	var order []bench
	for _, r := range rs {
		for _, b := range []bench{r.ours, r.python, r.floor, r.minimal} {
			if b.name != "" && !slices.Contains(order, b) {
				order = append(order, b)
			}
		}
	}
	results := map[bench][]float64{}
	skipped := map[bench]string{}
	for round := 1; round <= *rounds; round++ {
		start := time.Now()
		for _, b := range order {
			if _, ok := skipped[b]; ok {
				continue
			}
			v, err := run(bin, b)
			var skip skipError
			switch {
			case errors.As(err, &skip):
				skipped[b] = string(skip)
			case err != nil:
				log.Fatalf("%s: %v", b.name, err)
			default:
				results[b] = append(results[b], v)
			}
		}
		log.Printf("round %d of %d: %v", round, *rounds, time.Since(start).Round(time.Second))
	}
	for b, why := range skipped {
		log.Printf("skipped %s: %s", b.name, why)
	}
	report(os.Stdout, rs, results, *rounds)
}

type skipError string

func (e skipError) Error() string { return string(e) }

// run runs one benchmark of the test binary and returns its metric.
func run(bin string, b bench) (float64, error) {
	var pattern []string
	for _, part := range strings.Split(b.name, "/") {
		pattern = append(pattern, "^"+part+"$")
	}
	pattern[0] = "^Benchmark" + strings.TrimPrefix(pattern[0], "^")
	cmd := exec.Command(bin, "-test.run=^$", "-test.bench="+strings.Join(pattern, "/"),
		"-test.benchtime="+strconv.Itoa(b.n)+"x", "-test.count=1", "-test.timeout=5m")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%v\n%s", err, out.String())
	}
	return parse(&out, b)
}

// parse finds the benchmark's result line and reads the metric of unit
// from it: "BenchmarkX/y-2  10  18000000 ns/op  350 µs-to-first-line".
func parse(r io.Reader, b bench) (float64, error) {
	prefix := "Benchmark" + b.name + "-"
	if runtime.GOMAXPROCS(0) == 1 {
		prefix = "Benchmark" + b.name
	}
	sc := bufio.NewScanner(r)
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if strings.Contains(line, "--- SKIP") {
			why := ""
			if sc.Scan() {
				why = strings.TrimSpace(sc.Text())
			}
			return 0, skipError(why)
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if f[i+1] == b.unit {
				return strconv.ParseFloat(f[i], 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in the output:\n%s", b.unit, strings.Join(lines, "\n"))
}

func median(xs []float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// report prints the table, then the goals of the benchmark issue with what
// this run found.
func report(w io.Writer, rs []row, results map[bench][]float64, rounds int) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "\n%d rounds on %s: %d CPUs, %s/%s, %s; %s\n", rounds, host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), pythonVersion())
	fmt.Fprintf(w, "medians; ratios are of times (below 1: ours is faster) or of memory;\n")
	fmt.Fprintf(w, "the floor of a start is an exec of the same binary, that of a large item one copy of it in memory\n")
	fmt.Fprintf(w, "(in one core's cache; two copies across the cores, as a transport between processes makes, are a row),\n")
	fmt.Fprintf(w, "that of the CPU-bound Pool tasks the same tasks on one worker\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measurement\tours\tPython\tours/Python\tfloor\tours/floor\tminimal Go program\t")
	value := func(b bench, scale float64) (float64, string) {
		if b.name == "" {
			return 0, ""
		}
		v, ok := median(results[b])
		if !ok {
			return 0, "—"
		}
		return v / scale, strconv.FormatFloat(v/scale, 'f', digits(v/scale), 64)
	}
	ratio := func(a, b float64, as, bs string) string {
		if as == "" || bs == "" || as == "—" || bs == "—" || b == 0 {
			return ""
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	got := map[string]float64{}
	for _, r := range rs {
		o, os := value(r.ours, r.scale)
		p, ps := value(r.python, r.scale)
		f, fs := value(r.floor, r.scale)
		_, ms := value(r.minimal, r.scale)
		got[r.what] = o
		got["python "+r.what] = p
		got["floor "+r.what] = f
		got["minimal "+r.what], _ = value(r.minimal, r.scale)
		unit := " " + r.unit
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.what, withUnit(os, unit), withUnit(ps, unit), ratio(o, p, os, ps),
			withUnit(fs, unit), ratio(o, f, os, fs), withUnit(ms, unit))
	}
	tw.Flush()

	fmt.Fprintln(w, "\ngoals:")
	goal := func(ok bool, text string, args ...any) {
		mark := "MISSED"
		if ok {
			mark = "holds "
		}
		fmt.Fprintf(w, "  %s  %s\n", mark, fmt.Sprintf(text, args...))
	}
	for _, m := range []string{"spawn", "fork"} {
		for _, bin := range []string{"test binary", "program"} {
			what := "Start+Join, " + m + ", " + bin
			goal(got[what] <= 1.3*got["floor "+what], "%s Start+Join within 1.3x of the floor, %s: %.2fx", m, bin, got[what]/got["floor "+what])
		}
		o := got["Start+Join, "+m+", program"]
		if ps := got["python Start+Join, spawn, program"]; ps > 0 {
			goal(ps >= 15*o, "%s Start+Join at least 15x faster than Python's spawn, program: %.1fx", m, ps/o)
		}
		if pf := got["python Start+Join, fork, program"]; pf > 0 {
			goal(o < pf, "%s Start+Join faster than Python's fork, program: %.2fx of its time", m, o/pf)
		}
	}
	fl := got["Start to first line, forkserver"]
	goal(fl < 0.3, "forkserver Start to first line under 0.3 ms: %.3f ms", fl)
	for _, m := range []string{"spawn", "fork", "forkserver"} {
		what := "100 Start+Join at once, " + m + ", program"
		goal(got[what] < 150, "100 Start+Join at once under 150 ms, %s, program: %.0f ms (floor: 100 execs of the program %.0f ms, of an empty Go program %.0f ms)",
			m, got[what], got["floor "+what], got["minimal "+what])
	}
	if pq := got["python Queue round trip"]; pq > 0 {
		q := got["Queue round trip"]
		goal(pq >= 2*q, "Queue round trips at least 2x Python's rate: %.2fx", pq/q)
	}
	for _, items := range []string{"ints", "records"} {
		for _, c := range []string{"1", "4"} {
			what := "Queue pipelined, per item, " + items + ", consumers: " + c
			if p := got["python "+what]; p > 0 {
				goal(p >= 5*got[what], "small %s pipelined through a Queue at least 5x Python's rate, %s consumer(s): %.2fx", items, c, p/got[what])
			}
		}
	}
	for _, size := range []string{"1MiB", "64MiB"} {
		for _, kind := range bulkKinds {
			what := kind.what + ", a " + size + " []byte to a child"
			if p := got["python "+what]; p > 0 {
				across := ""
				if two := got["two copies of a "+size+" []byte, one on each core"]; two > 0 {
					across = fmt.Sprintf("; %.2fx the time of two copies on two cores", got[what]/two)
				}
				goal(p >= 3*got[what], "%s through a %s at least 3x Python's MB/s: %.2fx (%.1f copies' time%s)",
					size, kind.what, p/got[what], got[what]/got["floor "+what], across)
			}
		}
	}
	if pf := got["python Pool of 2 to its first Apply, fork"]; pf > 0 {
		for _, m := range []string{"spawn", "fork", "forkserver"} {
			o := got["Pool of 2 to its first Apply, "+m]
			goal(o < pf, "a %s Pool of 2 to its first Apply faster than Python's fork Pool: %.2fx of its time", m, o/pf)
		}
	}
	for _, g := range []struct {
		what, text string
		times      float64
	}{
		{"Pool Map of 100,000 ints", "Pool Map of small ints at least 3x Python's items/s", 3},
		{"Pool Imap of 10,000 ints, chunksize 1", "Pool Imap, chunksize 1, at least 10x Python's items/s", 10},
		{"Pool ApplyAsync then Get", "Pool ApplyAsync then Get in at most 1/5 of Python's time", 5},
		{"Lock Acquire+Release, uncontended", "an uncontended Lock Acquire+Release in at most 1/3 of Python's time", 3},
		{"Value +1 under its lock, 2 processes, per increment", "two processes incrementing a Value under its lock at least 2x Python's increments/s", 2},
		{"Event ping-pong between 2 processes", "an Event ping-pong between two processes no slower than Python's", 1},
	} {
		if p := got["python "+g.what]; p > 0 {
			goal(p >= g.times*got[g.what], "%s: %.2fx", g.text, p/got[g.what])
		}
	}
	cpu := "Pool CPU-bound tasks, 2 workers against 1"
	goal(got["floor "+cpu] >= 1.8*got[cpu], "CPU-bound tasks: 2 pool workers give at least 1.8x the throughput of 1: %.2fx", got["floor "+cpu]/got[cpu])
	for _, m := range []string{"spawn", "fork", "forkserver"} {
		v := got["Idle child resident memory, "+m+", program"]
		goal(v < 4, "idle child resident memory under 4 MiB, %s: %.2f MiB (%.2f MiB of it private)", m, v, got["  of it private to the child, "+m])
	}
}

func withUnit(s, unit string) string {
	if s == "" || s == "—" {
		return s
	}
	return s + unit
}

// digits gives three significant figures, or none after the point for
// large numbers.
func digits(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	case v >= 1:
		return 2
	}
	return 3
}

func pythonVersion() string {
	out, err := exec.Command("python3", "--version").Output()
	if err != nil {
		return "no python3"
	}
	return strings.TrimSpace(string(out))
}
