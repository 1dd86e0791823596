package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Python's multiprocessing.connection frames every message, both ways,
// over TCP and Unix sockets alike, with a 4-byte big-endian signed length
// before the payload; a payload over 0x7fffffff bytes has the length -1
// there, then an 8-byte big-endian unsigned length (Python 3.8 and later).
const (
	PyShortHeader = 4
	PyLongHeader  = 4 + 8
)

// AppendPyHeader appends the header of a payload of n bytes.
func AppendPyHeader(dst []byte, n uint64) []byte {
	if n <= math.MaxInt32 {
		return binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	dst = binary.BigEndian.AppendUint32(dst, math.MaxUint32) // -1
	return binary.BigEndian.AppendUint64(dst, n)
}

// ErrPyLength is the error of a length no Python peer sends: negative, but
// not -1.
var ErrPyLength = errors.New("bad message length")

// PyShortLength reads a header's first 4 bytes: the payload's length, or
// long, when 8 more bytes hold it.
func PyShortLength(b []byte) (n uint64, long bool, err error) {
	v := int32(binary.BigEndian.Uint32(b))
	switch {
	case v == -1:
		return 0, true, nil
	case v < 0:
		return 0, false, fmt.Errorf("%w: %d", ErrPyLength, v)
	}
	return uint64(v), false, nil
}

// PyLongLength reads the 8 bytes of a long header.
func PyLongLength(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
