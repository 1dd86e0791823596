package wire

import (
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"strings"
	"sync"
)

// The compact encoding is for values made of the plain kinds: bools,
// integers, floats, strings, and slices, arrays, maps and structs of them.
// gob spends most of a small value's time on its general machinery (0.5 us
// a struct with a string and a slice, each way); the compact encoding
// writes the fields one after another, as the type itself describes them,
// and a fingerprint of the type's shape, which the decoder checks, so that
// an item of another type is an error, not a wrong value. Both ends of a
// queue know its type: nothing more needs to travel. Types with a method of
// their own for gob, binary or text, interfaces, pointers, and the others
// gob takes go through gob.
//
// An item is compactItem, the fingerprint (8 bytes), then the value:
//
//	bool               one byte, 0 or 1
//	intN               zigzag varint
//	uintN              varint
//	float32, float64   4 or 8 bytes, little-endian IEEE 754
//	string             varint length, bytes
//	slice, map         varint: 0 for nil, else 1 + length; the elements
//	                   (a map's as key, value), except that a slice's
//	                   integers and floats take their size in memory
//	                   apiece, little-endian (compact_plain.go)
//	array              the elements
//	struct             the exported fields, in order
//
// Every value takes at least one byte, and a type knows the fewest its
// values take, so a length is never larger than the bytes left can hold,
// and a lying one cannot make a reader allocate much more than the item's
// size (see maxGrowth).
const compactItem = 1

// compactVersion goes into every fingerprint, so that two programs whose
// encodings of one type differ refuse each other's items.
const compactVersion = "compact 2: "

// compactCodec encodes and decodes the values of one type.
type compactCodec struct {
	fingerprint [8]byte
	min         int // the fewest bytes a value takes
	enc         func(b []byte, v reflect.Value) []byte
	dec         func(d *compactDecoder, v reflect.Value) // v is settable
}

var compactCodecs sync.Map // reflect.Type → *compactCodec, nil for none

// compactCache is an ItemEncoder's or ItemDecoder's codec of the last type
// it met (a queue has one), and a decoder to use again.
type compactCache struct {
	t   reflect.Type
	c   *compactCodec
	dec compactDecoder
}

func (cc *compactCache) codec(t reflect.Type) *compactCodec {
	if cc.t != t {
		cc.t, cc.c = t, compactFor(t)
	}
	return cc.c
}

// compactFor returns the compact codec of t, nil when its values go
// through gob.
func compactFor(t reflect.Type) *compactCodec {
	if c, ok := compactCodecs.Load(t); ok {
		return c.(*compactCodec)
	}
	c := compileCompact(t, map[reflect.Type]*compactCodec{})
	if c != nil {
		h := fnv.New64a()
		h.Write([]byte(compactVersion))
		var shape strings.Builder
		describe(&shape, t, map[reflect.Type]bool{})
		h.Write([]byte(shape.String()))
		copy(c.fingerprint[:], h.Sum(nil))
	}
	compactCodecs.Store(t, c)
	return c
}

var (
	gobEncoderType    = reflect.TypeFor[gob.GobEncoder]()
	binaryMarshalType = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshalType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// marshals reports whether t has a method of its own by which gob would
// encode it.
func marshals(t reflect.Type) bool {
	for _, m := range []reflect.Type{gobEncoderType, binaryMarshalType, textMarshalType} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return true
		}
	}
	return false
}

// compileCompact makes the codec of t, or returns nil. seen holds the
// types being compiled, for types that contain themselves.
func compileCompact(t reflect.Type, seen map[reflect.Type]*compactCodec) *compactCodec {
	if c, ok := seen[t]; ok {
		return c // filled in once its compilation ends
	}
	if marshals(t) {
		return nil
	}
	c := &compactCodec{min: 1}
	seen[t] = c
	ok := true
	switch t.Kind() {
	case reflect.Bool:
		c.enc = func(b []byte, v reflect.Value) []byte {
			if v.Bool() {
				return append(b, 1)
			}
			return append(b, 0)
		}
		c.dec = func(d *compactDecoder, v reflect.Value) { v.SetBool(d.byte() != 0) }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.enc = func(b []byte, v reflect.Value) []byte { return binary.AppendVarint(b, v.Int()) }
		c.dec = func(d *compactDecoder, v reflect.Value) {
			x := d.varint()
			if v.OverflowInt(x) {
				d.fail("an integer too large for %v", v.Type())
			}
			v.SetInt(x)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		c.enc = func(b []byte, v reflect.Value) []byte { return binary.AppendUvarint(b, v.Uint()) }
		c.dec = func(d *compactDecoder, v reflect.Value) {
			x := d.uvarint()
			if v.OverflowUint(x) {
				d.fail("an integer too large for %v", v.Type())
			}
			v.SetUint(x)
		}
	case reflect.Float32:
		c.min = 4
		c.enc = func(b []byte, v reflect.Value) []byte {
			return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v.Float())))
		}
		c.dec = func(d *compactDecoder, v reflect.Value) {
			v.SetFloat(float64(math.Float32frombits(binary.LittleEndian.Uint32(d.take(4)))))
		}
	case reflect.Float64:
		c.min = 8
		c.enc = func(b []byte, v reflect.Value) []byte {
			return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float()))
		}
		c.dec = func(d *compactDecoder, v reflect.Value) {
			v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64(d.take(8))))
		}
	case reflect.String:
		c.enc = func(b []byte, v reflect.Value) []byte {
			s := v.String()
			return append(binary.AppendUvarint(b, uint64(len(s))), s...)
		}
		c.dec = func(d *compactDecoder, v reflect.Value) { v.SetString(string(d.take(d.length(1)))) }
	case reflect.Slice:
		ok = compileSlice(c, t, seen)
	case reflect.Array:
		elem := compileCompact(t.Elem(), seen)
		if ok = elem != nil && t.Len() > 0; ok {
			c.min = t.Len() * elem.min
			c.enc = func(b []byte, v reflect.Value) []byte {
				for i := range v.Len() {
					b = elem.enc(b, v.Index(i))
				}
				return b
			}
			c.dec = func(d *compactDecoder, v reflect.Value) {
				for i := range v.Len() {
					elem.dec(d, v.Index(i))
				}
			}
		}
	case reflect.Map:
		ok = compileMap(c, t, seen)
	case reflect.Struct:
		ok = compileStruct(c, t, seen)
	default:
		ok = false // interfaces, pointers, complex numbers, channels, functions
	}
	if !ok {
		delete(seen, t)
		return nil
	}
	return c
}

func compileSlice(c *compactCodec, t reflect.Type, seen map[reflect.Type]*compactCodec) bool {
	if t.Elem().Kind() == reflect.Uint8 && !marshals(t.Elem()) {
		c.enc = func(b []byte, v reflect.Value) []byte {
			if v.IsNil() {
				return append(b, 0)
			}
			return append(binary.AppendUvarint(b, uint64(v.Len())+1), v.Bytes()...)
		}
		c.dec = func(d *compactDecoder, v reflect.Value) {
			if n, ok := d.count(1, 1); ok {
				growTo(v, n)
				copy(v.Bytes(), d.take(n))
			}
		}
		return true
	}
	elem := compileCompact(t.Elem(), seen)
	if elem == nil {
		return false
	}
	if compilePlainSlice(c, t) {
		return true
	}
	c.enc = func(b []byte, v reflect.Value) []byte {
		if v.IsNil() {
			return append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		for i := range v.Len() {
			b = elem.enc(b, v.Index(i))
		}
		return b
	}
	c.dec = func(d *compactDecoder, v reflect.Value) {
		n, ok := d.count(elem.min, int(t.Elem().Size()))
		if !ok {
			return
		}
		growTo(v, n)
		for i := range n {
			elem.dec(d, v.Index(i))
		}
	}
	return true
}

// growTo makes v, a settable slice, one of n zero elements, empty rather
// than nil for none: v's own array when it has room (as gob does), else a
// new one. (Grow and SetLen make one allocation, MakeSlice two.)
func growTo(v reflect.Value, n int) {
	switch {
	case !v.IsNil() && v.Cap() >= n:
		v.SetLen(n)
		v.Clear()
	case n == 0:
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	default:
		v.SetZero()
		v.Grow(n)
		v.SetLen(n)
	}
}

func compileMap(c *compactCodec, t reflect.Type, seen map[reflect.Type]*compactCodec) bool {
	key, elem := compileCompact(t.Key(), seen), compileCompact(t.Elem(), seen)
	if key == nil || elem == nil {
		return false
	}
	c.enc = func(b []byte, v reflect.Value) []byte {
		if v.IsNil() {
			return append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		for it := v.MapRange(); it.Next(); {
			b = elem.enc(key.enc(b, it.Key()), it.Value())
		}
		return b
	}
	c.dec = func(d *compactDecoder, v reflect.Value) {
		n, ok := d.count(key.min+elem.min, int(t.Key().Size()+t.Elem().Size()))
		if !ok {
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), n)
		k, e := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
		for range n {
			k.SetZero()
			e.SetZero()
			key.dec(d, k)
			elem.dec(d, e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	}
	return true
}

func compileStruct(c *compactCodec, t reflect.Type, seen map[reflect.Type]*compactCodec) bool {
	type field struct {
		index int
		codec *compactCodec
	}
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue // as gob does
		}
		fc := compileCompact(f.Type, seen)
		if fc == nil {
			return false
		}
		fields = append(fields, field{i, fc})
	}
	if len(fields) == 0 {
		return false // gob refuses it, and says why
	}
	c.min = 0
	for _, f := range fields {
		c.min += f.codec.min
	}
	c.enc = func(b []byte, v reflect.Value) []byte {
		for _, f := range fields {
			b = f.codec.enc(b, v.Field(f.index))
		}
		return b
	}
	c.dec = func(d *compactDecoder, v reflect.Value) {
		for _, f := range fields {
			f.codec.dec(d, v.Field(f.index))
		}
	}
	return true
}

// describe writes the shape of t: what the fingerprint is made of.
func describe(w *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	if seen[t] {
		w.WriteString("@" + t.String()) // a type that holds itself
		return
	}
	seen[t] = true
	defer delete(seen, t)
	switch t.Kind() {
	case reflect.Slice:
		w.WriteString("[]")
		describe(w, t.Elem(), seen)
	case reflect.Array:
		fmt.Fprintf(w, "[%d]", t.Len())
		describe(w, t.Elem(), seen)
	case reflect.Map:
		w.WriteString("map[")
		describe(w, t.Key(), seen)
		w.WriteString("]")
		describe(w, t.Elem(), seen)
	case reflect.Struct:
		w.WriteString("struct{")
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				w.WriteString(f.Name + " ")
				describe(w, f.Type, seen)
				w.WriteString(";")
			}
		}
		w.WriteString("}")
	default:
		w.WriteString(t.Kind().String())
	}
}

// encode returns v as a compact item.
func (c *compactCodec) encode(v reflect.Value) []byte {
	b := make([]byte, 0, 64)
	b = append(append(b, compactItem), c.fingerprint[:]...)
	return c.enc(b, v)
}

// decode decodes item into v, which is settable, with d.
func (c *compactCodec) decode(d *compactDecoder, item []byte, v reflect.Value) (err error) {
	if len(item) < 9 || item[0] != compactItem || [8]byte(item[1:9]) != c.fingerprint {
		return fmt.Errorf("an item that is not a %v", v.Type())
	}
	d.rest = item[9:]
	defer func() {
		d.rest = nil
		if r := recover(); r != nil {
			bad, ok := r.(compactError)
			if !ok {
				panic(r)
			}
			err = bad
		}
	}()
	c.dec(d, v)
	if len(d.rest) != 0 {
		return fmt.Errorf("%d bytes left after a %v", len(d.rest), v.Type())
	}
	return nil
}

// compactError is how a decoder gives up: a panic that decode recovers.
type compactError struct{ error }

type compactDecoder struct{ rest []byte }

func (d *compactDecoder) fail(format string, args ...any) {
	panic(compactError{fmt.Errorf("a compact item: "+format, args...)})
}

func (d *compactDecoder) take(n int) []byte {
	if n > len(d.rest) {
		d.fail("cut short")
	}
	b := d.rest[:n:n]
	d.rest = d.rest[n:]
	return b
}

func (d *compactDecoder) byte() byte { return d.take(1)[0] }

func (d *compactDecoder) varint() int64 {
	x, n := binary.Varint(d.rest)
	if n <= 0 {
		d.fail("a bad integer")
	}
	d.rest = d.rest[n:]
	return x
}

func (d *compactDecoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.rest)
	if n <= 0 {
		d.fail("a bad integer")
	}
	d.rest = d.rest[n:]
	return x
}

// length reads a length of things of at least each bytes apiece.
func (d *compactDecoder) length(each int) int {
	n := d.uvarint()
	if n > uint64(len(d.rest)/each) {
		d.fail("a length of %d with %d bytes left", n, len(d.rest))
	}
	return int(n)
}

// count reads the length of a slice or map, whose elements take at least
// each bytes apiece in the item and size bytes in memory; false for nil.
// A length the bytes left cannot hold is an error, and so is one that
// would make the reader allocate more than maxGrowth times them.
func (d *compactDecoder) count(each, size int) (int, bool) {
	n := d.uvarint()
	if n == 0 {
		return 0, false
	}
	n--
	left := uint64(len(d.rest))
	if n > left/uint64(max(each, 1)) || n*uint64(size) > maxGrowth*left+4096 {
		d.fail("a length of %d with %d bytes left", n, len(d.rest))
	}
	return int(n), true
}

// maxGrowth bounds how much more memory a decoded value takes than its
// item: the most a legitimate one takes is a slice header (24 bytes) for
// a nil slice's byte.
const maxGrowth = 32
