package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	for _, size := range []int{0, 1, chunk, chunk + 1, 3*chunk + 7} {
		payload := bytes.Repeat([]byte{byte(size)}, size)
		require.NoError(t, WriteFrame(&buf, payload))
		got, err := ReadFrame(&buf)
		require.NoError(t, err)
		assert.Equal(t, payload, got)
	}
	_, err := ReadFrame(&buf)
	assert.Equal(t, io.EOF, err, "a clean end between frames is io.EOF")
}

func TestAppendFrameIsWriteFrame(t *testing.T) {
	var written bytes.Buffer
	require.NoError(t, WriteFrame(&written, []byte("head"), []byte("payload")))
	require.NoError(t, WriteFrame(&written, nil))
	appended, err := AppendFrame([]byte("x"), []byte("head"), []byte("payload"))
	require.NoError(t, err)
	appended, err = AppendFrame(appended, nil)
	require.NoError(t, err)
	assert.Equal(t, append([]byte("x"), written.Bytes()...), appended)
}

func TestFrameErrors(t *testing.T) {
	_, err := ReadFrame(bytes.NewReader([]byte{0, 0}))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "a truncated length")
	_, err = ReadFrame(bytes.NewReader([]byte{0, 0, 0, 9, 1, 2}))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "a truncated payload")
	_, err = ReadFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}))
	assert.ErrorIs(t, err, ErrFrameTooLarge)
	// A length that lies about a large frame costs only what arrives.
	head := binary.BigEndian.AppendUint32(nil, MaxFrame)
	_, err = ReadFrame(io.MultiReader(bytes.NewReader(head), strings.NewReader("short")))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestBootstrapRoundTrip(t *testing.T) {
	b := &Bootstrap{Token: "t", Target: "pkg.f", Args: []byte{1, 2}, ArgKinds: []ArgKind{ArgValue, ArgHandle, ArgNil}, Handles: []Handle{{Files: 1, State: []byte("state")}}, Files: []int{5}, Name: "Process-1:2", Identity: []int{1, 2}, Daemon: true, Authkey: []byte("k"), Method: "spawn", ParentName: "MainProcess", ParentPid: 9, Dir: "/d"}
	enc := EncodeBootstrap(b)
	got, err := DecodeBootstrap(enc)
	require.NoError(t, err)
	assert.Equal(t, b, got)
}

func TestBootstrapInconsistent(t *testing.T) {
	for name, b := range map[string]*Bootstrap{
		"no target":            {Token: "t"},
		"unknown kind":         {Target: "f", ArgKinds: []ArgKind{9}},
		"files without handle": {Target: "f", Files: []int{3}},
		"handle missing":       {Target: "f", ArgKinds: []ArgKind{ArgHandle}},
		"more files":           {Target: "f", ArgKinds: []ArgKind{ArgHandle}, Handles: []Handle{{Files: 1}}, Files: []int{3, 4}},
		"negative handle":      {Target: "f", ArgKinds: []ArgKind{ArgHandle}, Handles: []Handle{{Files: -1}}},
	} {
		enc := EncodeBootstrap(b)
		_, err := DecodeBootstrap(enc)
		assert.Error(t, err, name)
	}
	_, err := DecodeBootstrap([]byte("garbage"))
	assert.ErrorContains(t, err, "bootstrap message")
	enc := EncodeBootstrap(&Bootstrap{Target: "f", Name: "n"})
	for cut := range enc {
		_, err := DecodeBootstrap(enc[:cut])
		assert.Error(t, err, "truncated to %d bytes", cut)
	}
	_, err = DecodeBootstrap(append(enc, 0))
	assert.ErrorContains(t, err, "after the end")
}

func TestReports(t *testing.T) {
	var r Report
	require.NoError(t, r.Add(Started()))
	assert.True(t, r.Started)
	assert.False(t, r.HasOutcome)
	require.NoError(t, r.Add(Outcome(-3, "why")))
	assert.Equal(t, Report{Started: true, HasOutcome: true, Code: -3, Message: "why"}, r)

	long := Outcome(1, strings.Repeat("x", 2*MaxMessage))
	require.NoError(t, r.Add(long))
	assert.Len(t, r.Message, MaxMessage)
	assert.True(t, strings.HasSuffix(r.Message, "[truncated]"))

	assert.Error(t, r.Add(nil))
	assert.Error(t, r.Add([]byte{'O', 1}))
	assert.Error(t, r.Add([]byte{'?'}))
}

// The decoders read what another process wrote: whatever the bytes, they
// return an error or a value, never panic nor hang.

func FuzzReadFrame(f *testing.F) {
	var ok bytes.Buffer
	_ = WriteFrame(&ok, []byte("hello"))
	f.Add(ok.Bytes())
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			frame, err := ReadFrame(r)
			if err != nil {
				return
			}
			if len(frame) > len(data) {
				t.Fatalf("frame of %d bytes from %d bytes of input", len(frame), len(data))
			}
		}
	})
}

func FuzzDecodeBootstrap(f *testing.F) {
	enc := EncodeBootstrap(&Bootstrap{Token: "t", Target: "f", ArgKinds: []ArgKind{ArgHandle}, Handles: []Handle{{Files: 1, State: []byte("s")}}, Files: []int{4}})
	f.Add(enc)
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBootstrap(data)
		if err == nil && b.Target == "" {
			t.Fatal("a bootstrap message without a target was accepted")
		}
	})
}

func FuzzReport(f *testing.F) {
	f.Add(Started())
	f.Add(Outcome(1, "boom"))
	f.Add([]byte{'O'})
	f.Fuzz(func(t *testing.T, frame []byte) {
		var r Report
		_ = r.Add(frame)
	})
}

func TestQueueMessagesRoundTrip(t *testing.T) {
	req := &Request{Op: OpGet, ID: 7, Timeout: -1, Payload: []byte("x")}
	got, err := ParseRequest(req.Encode())
	require.NoError(t, err)
	assert.Equal(t, req, got)
	rep := &Reply{ID: 7, Status: StatusSize, Payload: make([]byte, 8)}
	gotRep, err := ParseReply(rep.Encode())
	require.NoError(t, err)
	assert.Equal(t, rep, gotRep)

	_, err = ParseRequest([]byte{OpPut})
	assert.Error(t, err)
	_, err = ParseRequest((&Request{Op: '?'}).Encode())
	assert.Error(t, err)
	_, err = ParseReply([]byte{0, 0, 0, 1, StatusSize, 1})
	assert.Error(t, err)
	_, err = ParseReply([]byte{0, 0, 0, 1, '?'})
	assert.Error(t, err)
}

func FuzzQueueMessages(f *testing.F) {
	f.Add((&Request{Op: OpPut, ID: 1, Payload: []byte("item")}).Encode())
	f.Add((&Reply{ID: 1, Status: StatusItem, Payload: []byte("item")}).Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ParseRequest(b); err == nil && len(r.Payload) != len(b)-requestHead {
			t.Fatal("request payload length")
		}
		if r, err := ParseReply(b); err == nil && len(r.Payload) != len(b)-replyHead {
			t.Fatal("reply payload length")
		}
	})
}
