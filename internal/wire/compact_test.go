package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type kinds struct {
	B       bool
	I       int
	I8      int8
	I16     int16
	I32     int32
	I64     int64
	U       uint
	U8      uint8
	U16     uint16
	U32     uint32
	U64     uint64
	F32     float32
	F64     float64
	S       string
	Bytes   []byte
	Ints    []int
	Names   [2]string
	Counts  map[string]int
	Nested  []map[int][]string
	Inner   inner
	hidden  int
	Missing []int
	Empty   []int
	NoMap   map[int]bool
}

type inner struct{ X, Y float64 }

type tree struct {
	Name string
	Kids []tree
}

// Types that hold themselves with no struct between.
type (
	nest   []nest
	forest map[string]forest
)

// roundTrip encodes v through an ItemEncoder and decodes it into a fresh
// value of its type.
func roundTrip[T any](t *testing.T, v T) (T, []byte) {
	t.Helper()
	var enc ItemEncoder
	var dec ItemDecoder
	item, err := enc.Encode(&v)
	require.NoError(t, err)
	var got T
	require.NoError(t, dec.Decode(item, &got))
	return got, item
}

func TestCompactRoundTrips(t *testing.T) {
	v := kinds{
		B: true, I: -1 << 30, I8: math.MinInt8, I16: math.MaxInt16, I32: -7, I64: math.MinInt64,
		U: 1 << 31, U8: 255, U16: 9, U32: math.MaxUint32, U64: math.MaxUint64,
		F32: 1.5, F64: math.Inf(-1), S: "héllo", Bytes: []byte{0, 1, 2},
		Ints: []int{3, -4}, Names: [2]string{"a", ""}, Counts: map[string]int{"x": 1, "y": -2},
		Nested: []map[int][]string{{1: {"one"}}, nil}, Inner: inner{1, 2}, hidden: 5,
		Empty: []int{}, NoMap: nil,
	}
	got, item := roundTrip(t, v)
	assert.Equal(t, byte(compactItem), item[0])
	v.hidden = 0 // unexported fields stay behind, as with gob
	assert.Equal(t, v, got)
	assert.Nil(t, got.Missing, "nil stays nil")
	assert.NotNil(t, got.Empty, "empty stays empty")

	n, item := roundTrip(t, 42)
	assert.Equal(t, 42, n)
	assert.Equal(t, 1+8+1, len(item), "an int is a byte or so")
	f, _ := roundTrip(t, math.NaN())
	assert.True(t, math.IsNaN(f))

	tr := tree{"root", []tree{{"a", nil}, {"b", []tree{{"c", nil}}}}}
	gotTree, _ := roundTrip(t, tr)
	assert.Equal(t, tr, gotTree, "a type that holds itself")
	gotNest, _ := roundTrip(t, nest{nil, nest{nest{}}})
	assert.Equal(t, nest{nil, nest{nest{}}}, gotNest)
	gotForest, _ := roundTrip(t, forest{"a": {"b": nil}})
	assert.Equal(t, forest{"a": {"b": nil}}, gotForest)
}

// A length the item cannot hold, or whose elements would take far more
// memory than the item, is an error, not an allocation.
func TestCompactRefusesLyingLengths(t *testing.T) {
	var enc ItemEncoder
	var dec ItemDecoder
	type big struct{ Blocks [][1 << 16]byte }
	item, err := enc.Encode(&big{Blocks: make([][1 << 16]byte, 1)})
	require.NoError(t, err)
	lying := append(append(item[:9:9], 0xff, 0xff, 0x03), make([]byte, 1<<16)...) // 65534 blocks
	var v big
	assert.ErrorContains(t, dec.Decode(lying, &v), "a length of")
	type headers struct{ Lists [][]int }
	item, err = enc.Encode(&headers{})
	require.NoError(t, err)
	lying = append(append(item[:9:9], 0x81, 0x80, 0x04), make([]byte, 1000)...) // 65536 nil slices in 1000 bytes
	var h headers
	assert.ErrorContains(t, dec.Decode(lying, &h), "a length of")
}

// Types gob encodes in ways of its own, or that the compact encoding does
// not know, go through gob, and still arrive.
func TestCompactLeavesOtherTypesToGob(t *testing.T) {
	type withTime struct{ When time.Time }
	type withPointer struct{ P *int }
	type withInterface struct{ A any }
	type withComplex struct{ C complex128 }
	type nothingExported struct{ x int }
	_ = nothingExported{x: 1}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[withTime](), reflect.TypeFor[withPointer](), reflect.TypeFor[withInterface](),
		reflect.TypeFor[withComplex](), reflect.TypeFor[nothingExported](), reflect.TypeFor[[]time.Time](),
		reflect.TypeFor[[0]int](), reflect.TypeFor[map[string]any](),
	} {
		assert.Nil(t, compactFor(typ), "%v", typ)
	}
	now := time.Now().Round(0)
	got, item := roundTrip(t, withTime{now})
	assert.NotEqual(t, byte(compactItem), item[0])
	assert.True(t, now.Equal(got.When))
	seven := 7
	gotP, _ := roundTrip(t, withPointer{&seven})
	assert.Equal(t, 7, *gotP.P)
}

// An item of another type is an error, not a wrong value: even of the same
// layout with other field names.
func TestCompactRefusesAnotherType(t *testing.T) {
	type a struct{ X, Y int }
	type b struct{ X, Z int }
	type sameAsA struct{ X, Y int }
	var enc ItemEncoder
	var dec ItemDecoder
	item, err := enc.Encode(&a{1, 2})
	require.NoError(t, err)
	var wrong b
	assert.ErrorContains(t, dec.Decode(item, &wrong), "not a wire.b")
	var n int
	assert.Error(t, dec.Decode(item, &n))
	var anything any
	assert.Error(t, dec.Decode(item, &anything))
	var same sameAsA
	require.NoError(t, dec.Decode(item, &same), "the shape is what counts, as with gob")
	assert.Equal(t, sameAsA{1, 2}, same)
}

func FuzzCompactItem(f *testing.F) {
	var enc ItemEncoder
	seed := kinds{S: "seed", Ints: []int{1}, Counts: map[string]int{"k": 1}, Nested: []map[int][]string{{2: {"x"}}}}
	good, err := enc.Encode(&seed)
	require.NoError(f, err)
	f.Add(good[9:])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, value []byte) {
		item := append(good[:9:9], value...)
		var dec ItemDecoder
		var v kinds
		if err := dec.Decode(item, &v); err != nil {
			return
		}
		// Whatever decoded goes through again unchanged (compared as
		// printed: fmt sorts maps, and NaN is NaN).
		again, err := enc.Encode(&v)
		require.NoError(t, err)
		var w kinds
		require.NoError(t, dec.Decode(again, &w))
		assert.Equal(t, fmt.Sprint(v), fmt.Sprint(w))
	})
}

func BenchmarkItemCompactStruct(b *testing.B) {
	type plain struct {
		Name   string
		Values []int
	}
	var enc ItemEncoder
	var dec ItemDecoder
	v := plain{Name: "item", Values: []int{1, 2, 3}}
	for range b.N {
		item, err := enc.Encode(&v)
		if err != nil {
			b.Fatal(err)
		}
		var got plain
		if err := dec.Decode(item, &got); err != nil {
			b.Fatal(err)
		}
	}
}

type level int16

// plainSliceCase checks that a slice of numbers travels as its count and
// its elements at their size, little-endian, and comes back whole.
func plainSliceCase[E any](t *testing.T, s []E, size int, put func([]byte, E) []byte) {
	t.Helper()
	codec := compactFor(reflect.TypeOf(s))
	require.NotNil(t, codec)
	want := binary.AppendUvarint(nil, uint64(len(s))+1)
	for _, x := range s {
		want = put(want, x)
	}
	assert.Len(t, want, uvarintLen(len(s)+1)+size*len(s))
	assert.Equal(t, want, codec.enc(nil, reflect.ValueOf(s)), "%T", s)
	got, _ := roundTrip(t, s)
	assert.Equal(t, s, got)
}

func uvarintLen(n int) int { return len(binary.AppendUvarint(nil, uint64(n))) }

func TestCompactPlainSlices(t *testing.T) {
	le := binary.LittleEndian
	plainSliceCase(t, []int{0, 1, -1, math.MaxInt, math.MinInt}, 8, func(b []byte, x int) []byte { return le.AppendUint64(b, uint64(x)) })
	plainSliceCase(t, []int8{math.MinInt8, math.MaxInt8}, 1, func(b []byte, x int8) []byte { return append(b, byte(x)) })
	plainSliceCase(t, []int16{math.MinInt16, 300}, 2, func(b []byte, x int16) []byte { return le.AppendUint16(b, uint16(x)) })
	plainSliceCase(t, []int32{math.MinInt32, math.MaxInt32}, 4, func(b []byte, x int32) []byte { return le.AppendUint32(b, uint32(x)) })
	plainSliceCase(t, []int64{math.MinInt64, math.MaxInt64}, 8, func(b []byte, x int64) []byte { return le.AppendUint64(b, uint64(x)) })
	plainSliceCase(t, []uint{0, math.MaxUint}, 8, func(b []byte, x uint) []byte { return le.AppendUint64(b, uint64(x)) })
	plainSliceCase(t, []uint16{math.MaxUint16}, 2, func(b []byte, x uint16) []byte { return le.AppendUint16(b, x) })
	plainSliceCase(t, []uint32{math.MaxUint32, 7}, 4, func(b []byte, x uint32) []byte { return le.AppendUint32(b, x) })
	plainSliceCase(t, []uint64{math.MaxUint64}, 8, func(b []byte, x uint64) []byte { return le.AppendUint64(b, x) })
	plainSliceCase(t, []float32{1.5, float32(math.Inf(1)), -0}, 4, func(b []byte, x float32) []byte { return le.AppendUint32(b, math.Float32bits(x)) })
	plainSliceCase(t, []float64{math.Pi, math.SmallestNonzeroFloat64, math.Inf(-1)}, 8, func(b []byte, x float64) []byte { return le.AppendUint64(b, math.Float64bits(x)) })
	plainSliceCase(t, []level{-3, 4}, 2, func(b []byte, x level) []byte { return le.AppendUint16(b, uint16(x)) })
	plainSliceCase(t, []int{}, 8, nil)
	plainSliceCase(t, []bool{true, false, true}, 1, func(b []byte, x bool) []byte {
		if x {
			return append(b, 1)
		}
		return append(b, 0)
	})

	got, _ := roundTrip(t, []float64(nil))
	assert.Nil(t, got, "nil stays nil")
	empty, _ := roundTrip(t, []bool{})
	assert.Equal(t, []bool{}, empty, "empty stays empty")
	type holder struct{ Xs []uint32 }
	h, _ := roundTrip(t, holder{[]uint32{1, 2, 3}})
	assert.Equal(t, holder{[]uint32{1, 2, 3}}, h, "inside a struct")
}

func TestCompactPlainSlicesRefuseShortItems(t *testing.T) {
	d := compactDecoder{}
	for _, n := range []uint64{2, 1 << 40} {
		floats := compactFor(reflect.TypeFor[[]float64]())
		short := append(append([]byte{compactItem}, floats.fingerprint[:]...), binary.AppendUvarint(nil, n+1)...)
		short = append(short, make([]byte, 12)...) // two floats take 16
		var fs []float64
		err := floats.decode(&d, short, reflect.ValueOf(&fs).Elem())
		require.Error(t, err, "a count of %d", n)
		assert.Contains(t, err.Error(), "a length of")
	}
}
