package wire

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForkserverMessagesRoundTrip(t *testing.T) {
	for _, m := range []FSMessage{
		{Kind: FSChallenge, Data: make([]byte, FSNonce)},
		{Kind: FSAnswer, Data: bytes.Repeat([]byte{7}, 2*FSNonce)},
		{Kind: FSStart, Code: FSUrgent},
		{Kind: FSStarted, Pid: 1234},
		{Kind: FSFailed, Pid: 0, Code: 11},
		{Kind: FSExit, Pid: 1234, Code: -9},
		{Kind: FSHello, Data: []byte("token")},
	} {
		got, err := ParseFS(m.Encode())
		require.NoError(t, err, "%q", m.Kind)
		if m.Data == nil {
			m.Data = []byte{}
		}
		assert.Equal(t, m, got)
	}
	for name, b := range map[string][]byte{
		"short":            {FSStart, 0, 0},
		"unknown kind":     FSMessage{Kind: '?'}.Encode(),
		"short nonce":      FSMessage{Kind: FSChallenge, Data: []byte{1}}.Encode(),
		"exit of pid 0":    FSMessage{Kind: FSExit}.Encode(),
		"negative failure": FSMessage{Kind: FSFailed, Pid: -1}.Encode(),
		"too long":         FSMessage{Kind: FSHello, Data: make([]byte, FSMaxMessage)}.Encode(),
	} {
		_, err := ParseFS(b)
		assert.Error(t, err, name)
	}
}

func TestServerBoot(t *testing.T) {
	b := &ServerBoot{Token: "t", Key: make([]byte, FSNonce), Dir: "/tmp/x", Listener: 4, ParentPid: 1}
	enc, err := EncodeServerBoot(b)
	require.NoError(t, err)
	got, err := DecodeServerBoot(enc)
	require.NoError(t, err)
	assert.Equal(t, b, got)
	b.Key = b.Key[:3]
	enc, _ = EncodeServerBoot(b)
	_, err = DecodeServerBoot(enc)
	assert.ErrorContains(t, err, "key of 3 bytes")
}

func FuzzForkserverMessages(f *testing.F) {
	f.Add(FSMessage{Kind: FSStarted, Pid: 2}.Encode())
	f.Add(FSMessage{Kind: FSAnswer, Data: make([]byte, 2*FSNonce)}.Encode())
	enc, _ := EncodeServerBoot(&ServerBoot{Token: "t", Key: make([]byte, FSNonce), Dir: "/d", Listener: 4})
	f.Add(enc)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseFS(b); err == nil {
			if len(b) > FSMaxMessage || len(m.Data) != len(b)-fsHead {
				t.Fatalf("accepted %d bytes with %d of data", len(b), len(m.Data))
			}
			again, err := ParseFS(m.Encode())
			if err != nil || again.Kind != m.Kind || !bytes.Equal(again.Data, m.Data) {
				t.Fatalf("does not round-trip: %v", err)
			}
		}
		if sb, err := DecodeServerBoot(b); err == nil && (len(sb.Key) != FSNonce || sb.Listener < 3) {
			t.Fatal("accepted a server bootstrap without a key or listener")
		}
	})
}
