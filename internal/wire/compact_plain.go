package wire

import (
	"encoding/binary"
	"reflect"
	"unsafe"
)

// Slices of integers and floats are what a Pool's Map carries by the
// hundred thousand. Element by element, through reflection and varints,
// they took 14 ns an int each way; their elements travel instead at their
// size in memory, little-endian, so that on a little-endian machine a
// slice is one copy each way. Slices of bools travel a byte an element,
// as bools do.

// littleEndian reports whether this machine stores integers as the
// compact encoding writes them.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// compilePlainSlice fills in c for t, a slice of a plain fixed-size kind
// without methods of its own, and reports whether it did.
func compilePlainSlice(c *compactCodec, t reflect.Type) bool {
	switch t.Elem().Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		fixedSlice(c, int(t.Elem().Size()))
	case reflect.Bool:
		boolSlice(c)
	default:
		return false
	}
	return true
}

// fixedSlice makes c encode and decode slices of numbers of size bytes.
func fixedSlice(c *compactCodec, size int) {
	c.enc = func(b []byte, v reflect.Value) []byte {
		if v.IsNil() {
			return append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		raw := unsafe.Slice((*byte)(v.UnsafePointer()), v.Len()*size)
		if littleEndian {
			return append(b, raw...)
		}
		start := len(b)
		b = append(b, raw...)
		swapEach(b[start:], size)
		return b
	}
	c.dec = func(d *compactDecoder, v reflect.Value) {
		n, ok := d.count(size, size)
		if !ok {
			return
		}
		growTo(v, n)
		if n == 0 {
			return
		}
		dst := unsafe.Slice((*byte)(v.UnsafePointer()), n*size)
		copy(dst, d.take(n*size))
		if !littleEndian {
			swapEach(dst, size)
		}
	}
}

// swapEach reverses the bytes of each size-byte number in b.
func swapEach(b []byte, size int) {
	for i := 0; i+size <= len(b); i += size {
		for j, k := i, i+size-1; j < k; j, k = j+1, k-1 {
			b[j], b[k] = b[k], b[j]
		}
	}
}

// boolSlice makes c encode and decode slices of bools, a byte each; any
// byte other than 0 decodes as true.
func boolSlice(c *compactCodec) {
	c.enc = func(b []byte, v reflect.Value) []byte {
		if v.IsNil() {
			return append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		for _, x := range unsafe.Slice((*bool)(v.UnsafePointer()), v.Len()) {
			if x {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
		return b
	}
	c.dec = func(d *compactDecoder, v reflect.Value) {
		n, ok := d.count(1, 1)
		if !ok {
			return
		}
		growTo(v, n)
		if n == 0 {
			return
		}
		s := unsafe.Slice((*bool)(v.UnsafePointer()), n)
		for i, x := range d.take(n) {
			s[i] = x != 0
		}
	}
}
