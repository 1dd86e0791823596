package multiprocessing_test

import (
	"testing"

	mp "github.com/mpgo/multiprocessing"
)

func init() {
	mp.Register(incrementUnderLock)
	mp.Register(pongEvents)
}

// BenchmarkLockUncontended is Acquire then Release of a Lock nobody else
// wants (Python: about 100 ns here).
func BenchmarkLockUncontended(b *testing.B) {
	l, err := mp.NewLock()
	if err != nil {
		b.Skip(err)
	}
	defer l.Close()
	for b.Loop() {
		l.Acquire()
		l.Release()
	}
}

// incrementUnderLock adds 1 to v n times, each under v's lock, once start
// is set.
func incrementUnderLock(v *mp.Value[int64], start *mp.Event, n int) {
	start.Wait()
	for range n {
		v.Update(func(x *int64) { *x++ })
	}
}

// BenchmarkValueIncrementTwoProcesses is two processes adding 1 to a
// Value under its lock, b.N times in all; an op is one increment.
func BenchmarkValueIncrementTwoProcesses(b *testing.B) {
	v, err := mp.NewValue[int64](0)
	if err != nil {
		b.Skip(err)
	}
	defer v.Close()
	start, err := mp.NewEvent()
	if err != nil {
		b.Fatal(err)
	}
	defer start.Close()
	ctx, _ := mp.GetContext(mp.Fork)
	var ps []*mp.Process
	for i := range 2 {
		p := ctx.Process(incrementUnderLock, v, start, b.N/2+i*(b.N%2))
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
	}
	b.ResetTimer()
	start.Set()
	for _, p := range ps {
		if err := p.Join(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := v.Load(); got != int64(b.N) {
		b.Fatalf("%d increments, not %d", got, b.N)
	}
}

// pongEvents answers each ping with a pong, n times.
func pongEvents(ping, pong *mp.Event, n int) {
	for range n {
		ping.Wait()
		ping.Clear()
		pong.Set()
	}
}

// BenchmarkEventPingPong is a round trip between two processes through two
// Events: set, waited for, cleared, answered.
func BenchmarkEventPingPong(b *testing.B) {
	ping, err := mp.NewEvent()
	if err != nil {
		b.Skip(err)
	}
	defer ping.Close()
	pong, err := mp.NewEvent()
	if err != nil {
		b.Fatal(err)
	}
	defer pong.Close()
	ctx, _ := mp.GetContext(mp.Fork)
	p := ctx.Process(pongEvents, ping, pong, b.N)
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		ping.Set()
		pong.Wait()
		pong.Clear()
	}
	b.StopTimer()
	if err := p.Join(); err != nil {
		b.Fatal(err)
	}
}
