//go:build unix

// The Python twins of the benchmarks in bench_test.go: the same work done
// by Python 3's multiprocessing, timed in the same run (bench/compare
// prints them side by side).

package multiprocessing_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

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

def answer_through_queue(c, o):
    while True:
        v = c.recv()
        if v is None:
            return
        o.put(v)

if __name__ == '__main__':
    n, kind = int(sys.argv[1]), sys.argv[2]
    ctx = mp.get_context('fork')
    ps = []
    if kind in ('queue', 'workers'):
        i, o = ctx.Queue(), ctx.Queue()
        workers = POOL_WORKERS if kind == 'workers' else 1
        ps = [ctx.Process(target=echo_queue, args=(i, o)) for _ in range(workers - 1)]
        p = ctx.Process(target=echo_queue, args=(i, o))
        def trip(k):
            i.put(k)
            o.get()
        def stop():
            for _ in range(workers):
                i.put(None)
    elif kind == 'result':
        a, c = ctx.Pipe()
        o = ctx.Queue()
        p = ctx.Process(target=answer_through_queue, args=(c, o))
        def trip(k):
            a.send(k)
            o.get()
        stop = lambda: a.send(None)
    else:
        a, c = ctx.Pipe()
        p = ctx.Process(target=echo_pipe, args=(c,))
        def trip(k):
            a.send(k)
            a.recv()
        stop = lambda: a.send(None)
    for w in ps + [p]:
        w.start()
    for k in range(10 * (len(ps) + 1)):
        trip(k)
    t = time.perf_counter_ns()
    for k in range(n):
        trip(k)
    elapsed = time.perf_counter_ns() - t
    stop()
    for w in ps + [p]:
        w.join()
    print(elapsed)
`

func benchPython(b *testing.B, kind string) {
	script := strings.ReplaceAll(pythonRoundTrips, "POOL_WORKERS", strconv.Itoa(poolWorkers))
	ns := runPython(b, script, kind)
	b.ReportMetric(ns/float64(b.N), "ns/op")
}

// runPython runs script with b.N and arg as its arguments and returns the
// number it prints; it skips the benchmark where python3 is missing.
func runPython(b *testing.B, script, arg string) float64 {
	out := pythonOutput(b, script, arg)
	v, err := strconv.ParseFloat(out, 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// pythonOutput runs script with b.N and arg as its arguments and returns
// what it prints, trimmed.
func pythonOutput(b *testing.B, script, arg string) string {
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
	return strings.TrimSpace(string(out))
}

func BenchmarkPythonQueueRoundTrip(b *testing.B) { benchPython(b, "queue") }

func BenchmarkPythonQueueWorkers(b *testing.B) { benchPython(b, "workers") }

func BenchmarkPythonPipeRoundTrip(b *testing.B) { benchPython(b, "pipe") }

func BenchmarkPythonQueueResult(b *testing.B) { benchPython(b, "result") }

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
	for _, method := range pythonMethods {
		b.Run(method, func(b *testing.B) {
			ns := runPython(b, pythonFirstLine, method)
			b.ReportMetric(ns/1e3, "µs-to-first-line")
		})
	}
}

// pythonProcesses measures, for a start method, what BenchmarkStartJoin,
// BenchmarkStart100 and BenchmarkIdleChildRSS measure: it prints the total
// nanoseconds of n operations after one to warm up, or the medians of
// resident and private memory in KiB.
const pythonProcesses = `
import multiprocessing as mp, os, statistics, sys, time

def noop():
    pass

def idle(q, done):
    q.put(os.getpid())
    done.wait()

def memory_kib(pid):
    rss = private = 0
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            k = line.split()
            if k[0] == 'Rss:':
                rss = int(k[1])
            elif k[0] in ('Private_Clean:', 'Private_Dirty:'):
                private += int(k[1])
    return rss, private

if __name__ == '__main__':
    n, (what, method) = int(sys.argv[1]), sys.argv[2].split(':')
    ctx = mp.get_context(method)
    if what == 'rss':
        q = ctx.SimpleQueue()
        rss, private = [], []
        for k in range(n):
            done = ctx.Event()
            p = ctx.Process(target=idle, args=(q, done))
            p.start()
            r, p_ = memory_kib(q.get())
            rss.append(r)
            private.append(p_)
            done.set()
            p.join()
        print(statistics.median(rss), statistics.median(private))
        sys.exit()
    def once():
        procs = [ctx.Process(target=noop) for _ in range(100 if what == 'start100' else 1)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    once()
    t = time.perf_counter_ns()
    for k in range(n):
        once()
    print(time.perf_counter_ns() - t)
`

// pythonMethods are Python's start methods, for its baselines.
var pythonMethods = []string{"spawn", "fork", "forkserver"}

// BenchmarkPythonStartJoin is BenchmarkStartJoin in Python.
func BenchmarkPythonStartJoin(b *testing.B) { benchPythonStarts(b, "startjoin") }

// BenchmarkPythonStart100 is BenchmarkStart100 in Python.
func BenchmarkPythonStart100(b *testing.B) { benchPythonStarts(b, "start100") }

func benchPythonStarts(b *testing.B, what string) {
	for _, method := range pythonMethods {
		b.Run(method, func(b *testing.B) {
			ns := runPython(b, pythonProcesses, what+":"+method)
			b.ReportMetric(ns/float64(b.N), "ns/op")
		})
	}
}

// BenchmarkPythonIdleChildRSS is BenchmarkIdleChildRSS in Python.
func BenchmarkPythonIdleChildRSS(b *testing.B) {
	for _, method := range pythonMethods {
		b.Run(method, func(b *testing.B) {
			out := pythonOutput(b, pythonProcesses, "rss:"+method)
			var rss, private float64
			if _, err := fmt.Sscan(out, &rss, &private); err != nil {
				b.Fatalf("%q: %v", out, err)
			}
			b.ReportMetric(rss/1024, "MiB-rss")
			b.ReportMetric(private/1024, "MiB-private")
		})
	}
}

// pythonBulk is the Python twin of bench_bulk_test.go: n ints or records
// pipelined through queues ("pipelined:CONSUMERS", "records:CONSUMERS"),
// or n large items through a
// Queue or a Pipe ("queue:SIZE", "pipe:SIZE"); it prints the time taken.
const pythonBulk = `
import multiprocessing as mp, sys, time

def echo(i, o):
    while True:
        v = i.get()
        if v < 0:
            return
        o.put(2 * v)

def echo_records(i, o):
    while True:
        r = i.get()
        if not r[0]:
            return
        o.put(r)

def len_queued(i, o):
    while True:
        b = i.get()
        if not b:
            return
        o.put(len(b))

def len_sent(c):
    while True:
        b = c.recv_bytes()
        if not b:
            return
        c.send(len(b))

def len_sent_into(c, size):
    buf = bytearray(size)
    while True:
        n = c.recv_bytes_into(buf)
        if not n:
            return
        c.send(n)

if __name__ == '__main__':
    n, (kind, arg) = int(sys.argv[1]), sys.argv[2].split(':')
    ctx = mp.get_context('fork')
    if kind in ('pipelined', 'records'):
        consumers = int(arg)
        if kind == 'pipelined':
            echoer, item, value, stop = echo, lambda k: k, lambda v: v // 2, -1
        else:
            echoer, item, value, stop = echo_records, lambda k: ('item', [k, k, k]), lambda r: r[1][0], ('', [])
        i, o = ctx.Queue(), ctx.Queue()
        ps = [ctx.Process(target=echoer, args=(i, o)) for _ in range(consumers)]
        for p in ps:
            p.start()
        for k in range(10 * consumers):
            i.put(item(k))
            o.get()
        t = time.perf_counter_ns()
        for k in range(n):
            i.put(item(k))
        total = 0
        for k in range(n):
            total += value(o.get())
        elapsed = time.perf_counter_ns() - t
        assert total == n * (n - 1) // 2
        for p in ps:
            i.put(stop)
    else:
        size = int(arg)
        item = (bytes(range(1, 252)) * (size // 251 + 1))[:size]
        if kind == 'queue':
            i, o = ctx.Queue(), ctx.Queue()
            ps = [ctx.Process(target=len_queued, args=(i, o))]
            def trip():
                i.put(item)
                assert o.get() == size
            stop = lambda: i.put(b'')
        else:
            a, c = ctx.Pipe()
            if kind == 'pipeinto':
                ps = [ctx.Process(target=len_sent_into, args=(c, size))]
            else:
                ps = [ctx.Process(target=len_sent, args=(c,))]
            def trip():
                a.send_bytes(item)
                assert a.recv() == size
            stop = lambda: a.send_bytes(b'')
        for p in ps:
            p.start()
        trip()
        t = time.perf_counter_ns()
        for k in range(n):
            trip()
        elapsed = time.perf_counter_ns() - t
        stop()
    for p in ps:
        p.join()
    print(elapsed)
`

// BenchmarkPythonQueuePipelined is BenchmarkQueuePipelined in Python.
func BenchmarkPythonQueuePipelined(b *testing.B) { benchPythonPipelined(b, "pipelined") }

// BenchmarkPythonQueuePipelinedRecords is BenchmarkQueuePipelinedRecords
// in Python, with a tuple of a string and a list for the record.
func BenchmarkPythonQueuePipelinedRecords(b *testing.B) { benchPythonPipelined(b, "records") }

func benchPythonPipelined(b *testing.B, kind string) {
	for _, consumers := range pipelineConsumers {
		b.Run(fmt.Sprint(consumers), func(b *testing.B) {
			ns := runPython(b, pythonBulk, fmt.Sprintf("%s:%d", kind, consumers))
			b.ReportMetric(ns/float64(b.N), "ns/op")
		})
	}
}

// BenchmarkPythonQueueBytes is BenchmarkQueueBytes in Python.
func BenchmarkPythonQueueBytes(b *testing.B) { benchPythonBytes(b, "queue") }

// BenchmarkPythonPipeBytes is BenchmarkPipeBytes in Python.
func BenchmarkPythonPipeBytes(b *testing.B) { benchPythonBytes(b, "pipe") }

// BenchmarkPythonPipeBytesInto is BenchmarkPipeBytesInto in Python: the
// child receives with recv_bytes_into, into a bytearray of its own.
func BenchmarkPythonPipeBytesInto(b *testing.B) { benchPythonBytes(b, "pipeinto") }

func benchPythonBytes(b *testing.B, kind string) {
	for _, s := range bulkSizes {
		b.Run(s.name, func(b *testing.B) {
			ns := runPython(b, pythonBulk, fmt.Sprintf("%s:%d", kind, s.size))
			b.ReportMetric(ns/float64(b.N), "ns/op")
			b.ReportMetric(float64(s.size)*float64(b.N)/ns*1e3, "MB/s")
		})
	}
}

// pythonPool is the Python twin of bench_pool_test.go, with Python's Pool
// of 2 workers: "first:METHOD" starts one, applies once, terminates and
// joins it; "map" maps over 100,000 ints, default chunksize; "imap" takes
// the results of 10,000 ints with chunksize 1; "apply" is apply_async
// then get. It prints the nanoseconds n of them took, after one to warm
// up.
const pythonPool = `
import multiprocessing as mp, sys, time

def sq(x):
    return x * x

if __name__ == '__main__':
    n, kind = int(sys.argv[1]), sys.argv[2]
    if kind.startswith('first:'):
        ctx = mp.get_context(kind.split(':')[1])
        def once():
            p = ctx.Pool(2)
            assert p.apply(sq, (3,)) == 9
            p.terminate()
            p.join()
        once()
        t = time.perf_counter_ns()
        for k in range(n):
            once()
        print(time.perf_counter_ns() - t)
        sys.exit()
    p = mp.get_context('fork').Pool(2)
    items = list(range(100000))
    if kind == 'map':
        once = lambda: p.map(sq, items)
    elif kind == 'imap':
        def once():
            for r in p.imap(sq, range(10000), 1):
                pass
    else:
        once = lambda: p.apply_async(sq, (3,)).get()
    once()
    t = time.perf_counter_ns()
    for k in range(n):
        once()
    elapsed = time.perf_counter_ns() - t
    p.terminate()
    p.join()
    print(elapsed)
`

func benchPythonPool(b *testing.B, kind string) {
	ns := runPython(b, pythonPool, kind)
	b.ReportMetric(ns/float64(b.N), "ns/op")
}

// BenchmarkPythonPoolFirstApply is BenchmarkPoolFirstApply in Python.
func BenchmarkPythonPoolFirstApply(b *testing.B) {
	for _, method := range pythonMethods {
		b.Run(method, func(b *testing.B) { benchPythonPool(b, "first:"+method) })
	}
}

// BenchmarkPythonPoolMap is BenchmarkPoolMap in Python.
func BenchmarkPythonPoolMap(b *testing.B) { benchPythonPool(b, "map") }

// BenchmarkPythonPoolImap is BenchmarkPoolImap in Python.
func BenchmarkPythonPoolImap(b *testing.B) { benchPythonPool(b, "imap") }

// BenchmarkPythonPoolApplyAsyncGet is BenchmarkPoolApplyAsyncGet in Python.
func BenchmarkPythonPoolApplyAsyncGet(b *testing.B) { benchPythonPool(b, "apply") }

// pythonSync is the Python twin of bench_sync_test.go: "lock" times n
// acquire and release of an uncontended Lock; "value" two processes adding
// 1 to a Value under its lock, n times in all; "event" n round trips of
// two Events between two processes. It prints the nanoseconds they took.
const pythonSync = `
import multiprocessing as mp, sys, time

def increment(v, start, n):
    start.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1

def pong_events(ping, pong, n):
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong.set()

if __name__ == '__main__':
    n, kind = int(sys.argv[1]), sys.argv[2]
    ctx = mp.get_context('fork')
    if kind == 'lock':
        l = ctx.Lock()
        t = time.perf_counter_ns()
        for _ in range(n):
            l.acquire()
            l.release()
        print(time.perf_counter_ns() - t)
    elif kind == 'value':
        v, start = ctx.Value('q', 0), ctx.Event()
        ps = [ctx.Process(target=increment, args=(v, start, n // 2 + i * (n % 2))) for i in range(2)]
        for p in ps:
            p.start()
        t = time.perf_counter_ns()
        start.set()
        for p in ps:
            p.join()
        print(time.perf_counter_ns() - t)
        assert v.value == n
    else:
        ping, pong = ctx.Event(), ctx.Event()
        p = ctx.Process(target=pong_events, args=(ping, pong, n))
        p.start()
        t = time.perf_counter_ns()
        for _ in range(n):
            ping.set()
            pong.wait()
            pong.clear()
        print(time.perf_counter_ns() - t)
        p.join()
`

func benchPythonSync(b *testing.B, kind string) {
	ns := runPython(b, pythonSync, kind)
	b.ReportMetric(ns/float64(b.N), "ns/op")
}

// BenchmarkPythonLockUncontended is BenchmarkLockUncontended in Python.
func BenchmarkPythonLockUncontended(b *testing.B) { benchPythonSync(b, "lock") }

// BenchmarkPythonValueIncrementTwoProcesses is
// BenchmarkValueIncrementTwoProcesses in Python.
func BenchmarkPythonValueIncrementTwoProcesses(b *testing.B) { benchPythonSync(b, "value") }

// BenchmarkPythonEventPingPong is BenchmarkEventPingPong in Python.
func BenchmarkPythonEventPingPong(b *testing.B) { benchPythonSync(b, "event") }
