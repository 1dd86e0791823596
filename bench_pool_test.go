//go:build unix

package multiprocessing_test

import (
	"context"
	"testing"

	mp "github.com/mpgo/multiprocessing"
)

// burn is CPU-bound work of about n additions.
func burn(n int) int {
	s := 0
	for i := range n {
		s += i ^ (s >> 3)
	}
	return s
}

func init() { mp.Register(burn) }

func benchPool(b *testing.B, method mp.StartMethod, processes int) *mp.Pool {
	ctx, err := mp.GetContext(method)
	if err != nil {
		b.Fatal(err)
	}
	p, err := ctx.Pool(mp.PoolOptions{Processes: processes})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Terminate(); p.Join() })
	return p
}

// BenchmarkPoolFirstApply is a pool of 2 until its first Apply's result
// (Python's fork Pool: about 9 ms here).
func BenchmarkPoolFirstApply(b *testing.B) {
	for _, method := range methods {
		b.Run(string(method), func(b *testing.B) {
			for b.Loop() {
				ctx, _ := mp.GetContext(method)
				p, err := ctx.Pool(mp.PoolOptions{Processes: 2})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := mp.Apply[int](context.Background(), p, sq, 3); err != nil {
					b.Fatal(err)
				}
				p.Terminate()
				p.Join()
			}
		})
	}
}

// BenchmarkPoolMap is Map of 100,000 small ints with the default chunksize.
func BenchmarkPoolMap(b *testing.B) {
	p := benchPool(b, mp.Forkserver, 2)
	items := make([]int, 100_000)
	for i := range items {
		items[i] = i
	}
	for b.Loop() {
		if _, err := mp.Map[int, int](context.Background(), p, sq, items, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(items)), "ns/item")
}

// BenchmarkPoolImap is Imap with chunksize 1 over 10,000 items.
func BenchmarkPoolImap(b *testing.B) {
	p := benchPool(b, mp.Forkserver, 2)
	seq := func(yield func(int) bool) {
		for i := range 10_000 {
			if !yield(i) {
				return
			}
		}
	}
	for b.Loop() {
		for _, err := range mp.Imap[int, int](context.Background(), p, sq, seq, 1) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/item")
}

// BenchmarkPoolApplyAsyncGet is ApplyAsync then Get, one after another.
func BenchmarkPoolApplyAsyncGet(b *testing.B) {
	p := benchPool(b, mp.Forkserver, 2)
	for b.Loop() {
		if _, err := mp.ApplyAsync[int](p, sq, 3).Get(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPoolCPUBound is 20 tasks of about 10 ms each on 1 and 2
// workers: the second should take about half the time of the first.
func BenchmarkPoolCPUBound(b *testing.B) {
	n := 10_000_000 // about 10 ms here
	for _, workers := range []int{1, 2} {
		b.Run(map[int]string{1: "1-worker", 2: "2-workers"}[workers], func(b *testing.B) {
			p := benchPool(b, mp.Forkserver, workers)
			items := make([]int, 20)
			for i := range items {
				items[i] = n
			}
			for b.Loop() {
				if _, err := mp.Map[int, int](context.Background(), p, burn, items, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
