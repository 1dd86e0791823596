package wire

import (
	"bytes"
	"math"
	"testing"
)

func TestPyHeaderAsPythonWritesIt(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want []byte
	}{
		{0, []byte{0, 0, 0, 0}},
		{1024, []byte{0, 0, 4, 0}},
		{math.MaxInt32, []byte{0x7f, 0xff, 0xff, 0xff}},
		// Over 2 GiB: -1, then the length in 8 bytes (Python 3.8+).
		{math.MaxInt32 + 1, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0}},
		{5 << 30, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0x40, 0, 0, 0}},
	} {
		got := AppendPyHeader(nil, c.n)
		if !bytes.Equal(got, c.want) {
			t.Errorf("header of %d: % x, want % x", c.n, got, c.want)
		}
		n, long, err := PyShortLength(got)
		if err != nil {
			t.Fatal(err)
		}
		if long {
			if len(got) != PyLongHeader {
				t.Fatalf("a long header of %d bytes", len(got))
			}
			n = PyLongLength(got[4:])
		}
		if n != c.n {
			t.Errorf("read %d back, want %d", n, c.n)
		}
	}
	if _, _, err := PyShortLength([]byte{0xff, 0xff, 0xff, 0xfe}); err == nil {
		t.Error("-2 accepted as a length")
	}
}

func FuzzPyHeader(f *testing.F) {
	f.Add([]byte{0, 0, 4, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{0x80, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < PyShortHeader {
			return
		}
		n, long, err := PyShortLength(b)
		if err != nil {
			return
		}
		if long {
			if len(b) < PyLongHeader {
				return
			}
			n = PyLongLength(b[4:PyLongHeader])
		}
		again := AppendPyHeader(nil, n)
		m, long2, err := PyShortLength(again)
		if err != nil {
			t.Fatalf("our header of %d does not read back: %v", n, err)
		}
		if long2 {
			m = PyLongLength(again[4:])
		}
		if m != n {
			t.Fatalf("%d read back as %d", n, m)
		}
	})
}
