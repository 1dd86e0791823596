package wire

import (
	"bytes"
	"encoding/gob"
	"errors"
	"reflect"
	"sync"
	"unsafe"
)

// A queue's item of a plain type is in the compact encoding (compact.go);
// others are a gob stream of their own: the definitions of the types
// it needs, then its value, so that any process can decode it, whichever
// items it saw before. Making a gob encoder and decoder for every item is
// what costs, though: a fresh decoder compiles its decoding of T again
// each time. So an ItemEncoder keeps one encoder, whose definitions it
// puts before each value, and an ItemDecoder keeps one decoder for as long
// as the items it decodes begin with the same definitions: the items of
// one type from any number of processes, as the definitions of a type come
// out the same from every fresh encoder.
//
// A value that holds, in an interface, a type of its own carries that
// type's definition inside its value, where a second value of the same
// encoder would leave it out. So after such a value the encoder starts
// afresh, and the decoder too: each keeps only the definitions that come
// before the values.

// An item of a []byte or a string (the type itself, not one defined on it)
// is its bytes after a zero byte, which no gob stream begins with: gob
// would copy a large one twice on each side, and bytes are what large
// items mostly are.
const rawItem = 0

// RawParts returns the item of v, a pointer to a []byte or a string, as
// parts that alias it, without a copy; false for any other v.
func RawParts(v any) ([][]byte, bool) {
	switch raw := v.(type) {
	case *[]byte:
		return [][]byte{{rawItem}, *raw}, true
	case *string:
		return [][]byte{{rawItem}, unsafe.Slice(unsafe.StringData(*raw), len(*raw))}, true
	}
	return nil, false
}

// ItemEncoder encodes values into items. Its zero value is ready; it is
// safe for concurrent use.
type ItemEncoder struct {
	mu      sync.Mutex
	compact compactCache
	enc     *gob.Encoder
	out     bytes.Buffer
	types   []byte // the definitions enc has written so far
}

// Encode returns v (a pointer to the value) as an item.
func (e *ItemEncoder) Encode(v any) ([]byte, error) {
	switch raw := v.(type) {
	case *[]byte:
		return append([]byte{rawItem}, *raw...), nil
	case *string:
		return append([]byte{rawItem}, *raw...), nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		if c := e.compact.codec(rv.Type().Elem()); c != nil {
			return c.encode(rv.Elem()), nil
		}
	}
	return e.gobLocked(v)
}

// EncodeGob returns v (a value or a pointer to it) as a gob stream of its
// own, always: for a receiver that may decode it into another type, as
// gob allows.
func (e *ItemEncoder) EncodeGob(v any) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gobLocked(v)
}

// gobLocked is EncodeGob. The caller holds mu.
func (e *ItemEncoder) gobLocked(v any) ([]byte, error) {
	if e.enc == nil {
		e.enc = gob.NewEncoder(&e.out)
	}
	e.out.Reset()
	if err := e.enc.Encode(v); err != nil {
		// The encoder may have written part of a definition: start over.
		e.enc, e.types = nil, nil
		return nil, err
	}
	out := e.out.Bytes()
	value, alone, ok := splitItem(out)
	if !ok {
		e.enc, e.types = nil, nil
		return nil, errors.New("gob wrote a stream that does not parse")
	}
	e.types = append(e.types, out[:value]...)
	item := make([]byte, 0, len(e.types)+len(out)-value)
	item = append(append(item, e.types...), out[value:]...)
	if !alone || len(out) > keepBuffers {
		// (An encoder keeps its buffers as large as its largest value.)
		e.enc, e.types, e.out = nil, nil, bytes.Buffer{}
	}
	return item, nil
}

// ItemDecoder decodes items. Its zero value is ready; it is safe for
// concurrent use.
type ItemDecoder struct {
	mu      sync.Mutex
	compact compactCache
	dec     *gob.Decoder
	in      bytes.Reader
	types   []byte // the definitions dec has read
}

// Decode decodes item into v, a pointer. The value of a []byte is the
// item's own memory: the caller gives item up.
func (d *ItemDecoder) Decode(item []byte, v any) error {
	if len(item) > 0 && item[0] == rawItem {
		switch raw := v.(type) {
		case *[]byte:
			*raw = item[1:len(item):len(item)]
			return nil
		case *string:
			*raw = string(item[1:])
			return nil
		}
		return errors.New("gob: the bytes of a []byte or a string")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(item) > 0 && item[0] == compactItem {
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
			if c := d.compact.codec(rv.Type().Elem()); c != nil {
				return c.decode(&d.compact.dec, item, rv.Elem())
			}
		}
		return errors.New("an item in the compact encoding of another type")
	}
	return d.gobLocked(item, v)
}

// DecodeGob decodes into v, a pointer, an item that EncodeGob made.
func (d *ItemDecoder) DecodeGob(item []byte, v any) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gobLocked(item, v)
}

// gobLocked is DecodeGob. The caller holds mu.
func (d *ItemDecoder) gobLocked(item []byte, v any) error {
	value, alone, ok := splitItem(item)
	switch {
	case !ok:
		d.dec = nil
		return gob.NewDecoder(bytes.NewReader(item)).Decode(v) // for its error
	case d.dec != nil && bytes.Equal(d.types, item[:value]):
		d.in.Reset(item[value:])
	default:
		d.in.Reset(item)
		d.dec = gob.NewDecoder(&d.in) // a bytes.Reader is read as it is, not buffered
		d.types = append(d.types[:0], item[:value]...)
	}
	if err := d.dec.Decode(v); err != nil {
		d.dec = nil
		return err
	}
	if d.in.Len() != 0 {
		d.dec = nil
		return errors.New("gob: an item with more than one value")
	}
	if !alone || len(item) > keepBuffers {
		d.dec = nil // (it keeps a buffer as large as its largest message)
	}
	return nil
}

// keepBuffers is the largest item after which an encoder or decoder is
// kept: a large one would hold on to memory as large.
const keepBuffers = 64 << 10

// splitItem returns where the value of a gob stream starts, after the
// messages that define types, and whether the value is one message, with
// no definitions inside.
func splitItem(stream []byte) (value int, alone, ok bool) {
	value = -1
	messages := 0
	for off := 0; off < len(stream); {
		n, w := gobUint(stream[off:])
		if w == 0 || n == 0 || n > uint64(len(stream)-off-w) {
			return 0, false, false
		}
		if value < 0 {
			// A message begins with a type id, negative for a definition:
			// gob writes a signed integer with its sign in the lowest bit.
			id, _ := gobUint(stream[off+w:])
			if id&1 == 0 {
				value = off
			}
		}
		if value >= 0 {
			messages++
		}
		off += w + int(n)
	}
	return value, messages == 1, value >= 0
}

// gobUint decodes the unsigned integer at the start of b as gob writes it:
// a byte below 128 is itself; otherwise it is minus the count of the
// big-endian bytes that follow. It returns the value and the bytes read,
// 0 if b is cut short or the count is over 8.
func gobUint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	if b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	n := 256 - int(b[0])
	if n > 8 || len(b) < 1+n {
		return 0, 0
	}
	var x uint64
	for _, c := range b[1 : 1+n] {
		x = x<<8 | uint64(c)
	}
	return x, 1 + n
}
