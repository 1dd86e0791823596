package wire

import (
	"bytes"
	"encoding/gob"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type record struct {
	Name   string
	Values []int
	Any    any
}

type other struct{ X float64 }

func init() {
	gob.Register(other{})
	gob.Register("")
}

// Every item is a gob stream of its own: a fresh decoder reads it, and so
// does a decoder that has read items of other encoders before; also when
// values hold types of their own in an interface, whose definitions go
// inside the value.
func TestItemsDecodeAloneAndInAnyOrder(t *testing.T) {
	var first, second ItemEncoder
	var items [][]byte
	for i, v := range []record{
		{Name: "a", Values: []int{1, 2}},
		{Name: "b", Any: other{X: 1.5}},
		{Name: "c", Any: "text", Values: []int{3}},
		{Name: "d"},
		{Name: "e", Any: other{X: 2}},
		{Name: "f", Any: other{X: 3}},
	} {
		enc := &first
		if i%2 == 1 {
			enc = &second
		}
		item, err := enc.Encode(&v)
		require.NoError(t, err)
		items = append(items, item)

		var alone record
		require.NoError(t, gob.NewDecoder(bytes.NewReader(item)).Decode(&alone), "item %d by itself", i)
		assert.Equal(t, v, alone)
	}
	var dec ItemDecoder
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {1, 1, 0, 0, 2, 3, 0, 5, 5, 3}} {
		for _, i := range order {
			var got record
			require.NoError(t, dec.Decode(items[i], &got))
			var want record
			require.NoError(t, gob.NewDecoder(bytes.NewReader(items[i])).Decode(&want))
			assert.Equal(t, want, got)
		}
	}
}

// The second item of an encoder carries the definitions of the first
// again, not the whole of what it wrote before: only the definitions.
func TestItemCarriesDefinitionsNotEarlierValues(t *testing.T) {
	var enc ItemEncoder
	big := record{Name: string(make([]byte, 1000))}
	a, err := enc.Encode(&big)
	require.NoError(t, err)
	small := record{Name: "x"}
	b, err := enc.Encode(&small)
	require.NoError(t, err)
	assert.Less(t, len(b), len(a)-900)
}

// A decoder that failed starts afresh: the next good item decodes.
func TestItemDecoderAfterAnError(t *testing.T) {
	var enc ItemEncoder
	var dec ItemDecoder
	v := record{Name: "ok", Values: []int{7}}
	item, err := enc.Encode(&v)
	require.NoError(t, err)
	var wrong int
	assert.Error(t, dec.Decode(item, &wrong), "a record is not an int")
	assert.Error(t, dec.Decode([]byte{0x05, 0x01}, &v), "cut short")
	assert.Error(t, dec.Decode(nil, &v), "empty")
	assert.Error(t, dec.Decode(append(bytes.Clone(item), item...), &v), "two values")
	var got record
	require.NoError(t, dec.Decode(item, &got))
	assert.Equal(t, v, got)
}

// An encoder that failed starts afresh too.
func TestItemEncoderAfterAnError(t *testing.T) {
	var enc ItemEncoder
	bad := record{Any: func() {}}
	_, err := enc.Encode(&bad)
	require.Error(t, err)
	v := record{Name: "after"}
	item, err := enc.Encode(&v)
	require.NoError(t, err)
	var got record
	require.NoError(t, gob.NewDecoder(bytes.NewReader(item)).Decode(&got))
	assert.Equal(t, v, got)
}

func BenchmarkItemStruct(b *testing.B) {
	var enc ItemEncoder
	var dec ItemDecoder
	v := record{Name: "item", Values: []int{1, 2, 3}}
	for range b.N {
		item, err := enc.Encode(&v)
		if err != nil {
			b.Fatal(err)
		}
		var got record
		if err := dec.Decode(item, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFreshGobStruct(b *testing.B) {
	v := record{Name: "item", Values: []int{1, 2, 3}}
	for range b.N {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(&v); err != nil {
			b.Fatal(err)
		}
		var got record
		if err := gob.NewDecoder(&buf).Decode(&got); err != nil {
			b.Fatal(err)
		}
	}
}

// Whatever arrives, Decode returns an error or a value, and the decoder
// goes on decoding good items.
func FuzzItemDecoder(f *testing.F) {
	var enc ItemEncoder
	good, err := enc.Encode(&record{Name: "seed", Values: []int{1}})
	require.NoError(f, err)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, item []byte) {
		var dec ItemDecoder
		var v record
		_ = dec.Decode(item, &v)
		var got record
		require.NoError(t, dec.Decode(good, &got))
		assert.Equal(t, "seed", got.Name)
	})
}

// A []byte or a string travels as its bytes, and into anything else it
// does not decode.
func TestBytesAndStringsTravelRaw(t *testing.T) {
	var enc ItemEncoder
	var dec ItemDecoder
	b := []byte("some bytes")
	item, err := enc.Encode(&b)
	require.NoError(t, err)
	assert.Equal(t, append([]byte{rawItem}, b...), item)
	var gotBytes []byte
	require.NoError(t, dec.Decode(item, &gotBytes))
	assert.Equal(t, b, gotBytes)
	b[0] = 'S'
	assert.Equal(t, "some bytes", string(gotBytes), "the item is a copy, made at Encode")

	str := "a string"
	item, err = enc.Encode(&str)
	require.NoError(t, err)
	var gotString string
	require.NoError(t, dec.Decode(item, &gotString))
	assert.Equal(t, str, gotString)

	var n int
	assert.Error(t, dec.Decode(item, &n))
	var anything any
	assert.Error(t, dec.Decode(item, &anything), "an interface holds gob's values, not raw bytes")

	type named []byte
	nb := named("x")
	item, err = enc.Encode(&nb)
	require.NoError(t, err)
	assert.NotEqual(t, byte(rawItem), item[0], "a type defined on []byte goes through gob")
}

// After a large value the encoder and decoder let go of their buffers.
func TestLargeValuesAreNotKept(t *testing.T) {
	var enc ItemEncoder
	var dec ItemDecoder
	big := record{Name: string(make([]byte, 2*keepBuffers))}
	item, err := enc.Encode(&big)
	require.NoError(t, err)
	assert.Nil(t, enc.enc)
	assert.Zero(t, enc.out.Cap())
	var got record
	require.NoError(t, dec.Decode(item, &got))
	assert.Nil(t, dec.dec)
	assert.Equal(t, big, got)
}
