//go:build unix

package multiprocessing_test

import (
	"fmt"
	"testing"

	mp "github.com/mpgo/multiprocessing"
)

// Bulk work, as a pool's workers see it: many small items in flight at
// once, and large items. Their Python twins are in bench_python_test.go.

func init() {
	mp.Register(echoRecords)
	mp.Register(lenOfQueued)
	mp.Register(lenOfSent)
	mp.Register(lenOfSentInto)
}

// lenOfQueued gets byte slices from in and puts their lengths into out,
// until it gets an empty one.
func lenOfQueued(in *mp.Queue[[]byte], out *mp.Queue[int]) error {
	for {
		b, err := in.Get()
		if err != nil || len(b) == 0 {
			return err
		}
		if err := out.Put(len(b)); err != nil {
			return err
		}
	}
}

// lenOfSent receives byte messages on c and sends back their lengths,
// until it receives an empty one.
func lenOfSent(c *mp.Connection) error {
	for {
		b, err := c.RecvBytes()
		if err != nil || len(b) == 0 {
			return err
		}
		if err := c.Send(len(b)); err != nil {
			return err
		}
	}
}

// lenOfSentInto is lenOfSent receiving into a buffer it keeps, as large as
// the largest message of the benchmarks.
func lenOfSentInto(c *mp.Connection) error {
	buf := make([]byte, bulkSizes[len(bulkSizes)-1].size)
	for {
		n, err := c.RecvBytesInto(buf)
		if err != nil || n == 0 {
			return err
		}
		if err := c.Send(n); err != nil {
			return err
		}
	}
}

// pipelineConsumers are the numbers of children that share the input
// queue in BenchmarkQueuePipelined and its Python twin.
var pipelineConsumers = []int{1, 4}

// BenchmarkQueuePipelined puts b.N small ints into a queue that consumers
// echo (doubled) into another, then gets them all: the time per item, with
// every item in flight at once rather than one round trip at a time.
func BenchmarkQueuePipelined(b *testing.B) {
	benchPipelined(b, echoUntilNegative, func(i int) int { return i }, func(v int) int { return v / 2 }, -1)
}

// record is a struct of the kind programs put into queues: a string and a
// slice.
type record struct {
	Name   string
	Values []int
}

// echoRecords gets records from in and puts them into out, until one with
// no name.
func echoRecords(in, out *mp.Queue[record]) error {
	for {
		r, err := in.Get()
		if err != nil || r.Name == "" {
			return err
		}
		if err := out.Put(r); err != nil {
			return err
		}
	}
}

// BenchmarkQueuePipelinedRecords is BenchmarkQueuePipelined with records,
// echoed as they are.
func BenchmarkQueuePipelinedRecords(b *testing.B) {
	benchPipelined(b, echoRecords,
		func(i int) record { return record{Name: "item", Values: []int{i, i, i}} },
		func(r record) int { return r.Values[0] }, record{})
}

// benchPipelined runs a pipelined benchmark with echo as the consumers'
// target: item makes the i-th item, value gives back its i, and stop ends
// a consumer.
func benchPipelined[T any](b *testing.B, echo func(in, out *mp.Queue[T]) error, item func(int) T, value func(T) int, stop T) {
	for _, consumers := range pipelineConsumers {
		b.Run(fmt.Sprint(consumers), func(b *testing.B) {
			in, err := mp.NewQueue[T](0)
			if err != nil {
				b.Fatal(err)
			}
			defer in.Close()
			out, err := mp.NewQueue[T](0)
			if err != nil {
				b.Fatal(err)
			}
			defer out.Close()
			var ps []*mp.Process
			for range consumers {
				p := mp.NewProcess(echo, in, out)
				if err := p.Start(); err != nil {
					b.Fatal(err)
				}
				ps = append(ps, p)
			}
			for i := range 10 * consumers { // every consumer runs
				if err := in.Put(item(i)); err != nil {
					b.Fatal(err)
				}
				if _, err := out.Get(); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if err := in.Put(item(i)); err != nil {
					b.Fatal(err)
				}
			}
			sum := 0
			for range b.N {
				v, err := out.Get()
				if err != nil {
					b.Fatal(err)
				}
				sum += value(v)
			}
			b.StopTimer()
			if want := b.N * (b.N - 1) / 2; sum != want {
				b.Fatalf("the items sum to %d, want %d", sum, want)
			}
			for range consumers {
				if err := in.Put(stop); err != nil {
					b.Fatal(err)
				}
			}
			for _, p := range ps {
				if err := p.Join(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// bulkSizes are the sizes of the large items of BenchmarkQueueBytes,
// BenchmarkPipeBytes, their Python twins and BenchmarkCopyFloor.
var bulkSizes = []struct {
	name string
	size int
}{{"1MiB", 1 << 20}, {"64MiB", 64 << 20}}

// bulkItem is an item of size bytes that no page of is shared with
// another: a slice of nonzero bytes, written once.
func bulkItem(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i%251 + 1)
	}
	return b
}

// BenchmarkQueueBytes sends a large []byte through a Queue to a child,
// which answers with its length through another: the time per item, and
// its bytes per second.
func BenchmarkQueueBytes(b *testing.B) {
	for _, s := range bulkSizes {
		b.Run(s.name, func(b *testing.B) {
			in, err := mp.NewQueue[[]byte](0)
			if err != nil {
				b.Fatal(err)
			}
			defer in.Close()
			out, err := mp.NewQueue[int](0)
			if err != nil {
				b.Fatal(err)
			}
			defer out.Close()
			p := mp.NewProcess(lenOfQueued, in, out)
			if err := p.Start(); err != nil {
				b.Fatal(err)
			}
			item := bulkItem(s.size)
			trip := func() {
				if err := in.Put(item); err != nil {
					b.Fatal(err)
				}
				if n, err := out.Get(); err != nil || n != s.size {
					b.Fatalf("got %d, %v; want %d", n, err, s.size)
				}
			}
			timeTrips(b, s.size, trip)
			if err := in.Put(nil); err != nil {
				b.Fatal(err)
			}
			if err := p.Join(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// timeTrips times b.N trips of an item of size bytes, after one to warm
// up.
func timeTrips(b *testing.B, size int, trip func()) {
	trip()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		trip()
	}
	b.StopTimer()
}

// BenchmarkPipeBytes is BenchmarkQueueBytes over a duplex Pipe.
func BenchmarkPipeBytes(b *testing.B) { benchPipeBytes(b, lenOfSent) }

// BenchmarkPipeBytesInto is BenchmarkPipeBytes with a child that receives
// with RecvBytesInto, into a buffer of its own.
func BenchmarkPipeBytesInto(b *testing.B) { benchPipeBytes(b, lenOfSentInto) }

func benchPipeBytes(b *testing.B, child func(*mp.Connection) error) {
	for _, s := range bulkSizes {
		b.Run(s.name, func(b *testing.B) {
			a, c, err := mp.Pipe(true)
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			p := mp.NewProcess(child, c)
			if err := p.Start(); err != nil {
				b.Fatal(err)
			}
			c.Close()
			item := bulkItem(s.size)
			trip := func() {
				if err := a.SendBytes(item); err != nil {
					b.Fatal(err)
				}
				var n int
				if err := a.Recv(&n); err != nil || n != s.size {
					b.Fatalf("got %d, %v; want %d", n, err, s.size)
				}
			}
			timeTrips(b, s.size, trip)
			if err := a.SendBytes(nil); err != nil {
				b.Fatal(err)
			}
			if err := p.Join(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkCopyFloor is the floor of the large-item benchmarks: one copy
// of an item, in memory, in this process.
func BenchmarkCopyFloor(b *testing.B) {
	for _, s := range bulkSizes {
		b.Run(s.name, func(b *testing.B) {
			src, dst := bulkItem(s.size), make([]byte, s.size)
			b.SetBytes(int64(s.size))
			b.ResetTimer()
			for range b.N {
				copy(dst, src)
			}
		})
	}
}
