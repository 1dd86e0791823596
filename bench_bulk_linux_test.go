package multiprocessing_test

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkCopyAcrossCores is the floor of a transport that copies an item
// twice, into memory two processes share and out of it, each process on
// its own processor: a thread bound to the first processor copies the
// item into a buffer, then one bound to the second copies it out. The time
// is that of both copies, without the handoffs between them. Where one
// processor's copy is still in its cache, the other's reads it from there,
// which costs more than the copy of BenchmarkCopyFloor, whose source and
// destination stay in one processor's cache.
func BenchmarkCopyAcrossCores(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("one processor")
	}
	for _, s := range bulkSizes {
		b.Run(s.name, func(b *testing.B) {
			item, shared, out := bulkItem(s.size), make([]byte, s.size), make([]byte, s.size)
			var spent time.Duration
			copier := func(cpu int, dst, src []byte, turn <-chan bool, done chan<- bool) {
				// Bound to its processor for good: the thread ends with
				// the goroutine, which exits still locked to it.
				runtime.LockOSThread()
				var set unix.CPUSet
				set.Set(cpu)
				if err := unix.SchedSetaffinity(0, &set); err != nil {
					b.Error(err)
				}
				for range turn {
					start := time.Now()
					copy(dst, src)
					spent += time.Since(start)
					done <- true
				}
			}
			toWriter, toReader, done := make(chan bool), make(chan bool), make(chan bool)
			go copier(0, shared, item, toWriter, done)
			go copier(1, out, shared, toReader, done)
			trip := func() {
				toWriter <- true
				<-done
				toReader <- true
				<-done
			}
			trip()
			spent = 0
			b.SetBytes(int64(s.size))
			b.ResetTimer()
			for range b.N {
				trip()
			}
			b.StopTimer()
			close(toWriter)
			close(toReader)
			b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "ns/op")
		})
	}
}
