// Package authkey is Python's multiprocessing.connection handshake: an
// HMAC challenge in each direction over framed messages, so that only a
// peer that knows the key gets a connection. Both of Python's generations
// speak it: 3.12 and later challenge with "{sha256}" and 40 random bytes
// and answer with "{name}" and the MAC; 3.11 and older challenge with 20
// random bytes and answer with a bare 16-byte HMAC-MD5, which a modern
// side still accepts, and gives.
package authkey

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"fmt"
	"hash"

	"github.com/mpgo/multiprocessing/internal/mperr"
)

// A Messenger sends and receives whole messages.
type Messenger interface {
	Send(parts ...[]byte) error
	RecvMax(max uint64) ([]byte, error)
}

// The protocol's words.
var (
	challenge = []byte("#CHALLENGE#")
	welcome   = []byte("#WELCOME#")
	failure   = []byte("#FAILURE#")
)

const (
	maxMessage    = 256 // handshake messages are small; Python refuses more
	randomLength  = 40  // Python 3.12's MESSAGE_LENGTH
	legacyLength  = 20  // a challenge of Python 3.11 and older
	md5Length     = 16  // a bare HMAC-MD5 answer
	maxDigestName = 8   // "sha3_384"
	offeredDigest = "sha256"
)

// digests are the MACs Python allows, by the names it gives them.
var digests = map[string]func() hash.Hash{
	"md5":      md5.New,
	"sha256":   sha256.New,
	"sha384":   sha512.New384,
	"sha3_256": func() hash.Hash { return sha3.New256() },
	"sha3_384": func() hash.Hash { return sha3.New384() },
}

func authError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{mperr.ErrAuthentication}, args...)...)
}

// Both runs the handshake in both directions: this side challenges first
// when it is the listening one (Python's Listener delivers, then answers;
// its Client answers, then delivers).
func Both(m Messenger, key []byte, listening bool) error {
	first, second := Answer, Deliver
	if listening {
		first, second = Deliver, Answer
	}
	if err := first(m, key); err != nil {
		return err
	}
	return second(m, key)
}

// Deliver challenges the peer to prove it knows key: Python's
// deliver_challenge. A peer that fails is told #FAILURE#.
func Deliver(m Messenger, key []byte) error {
	msg := make([]byte, 0, 2+len(offeredDigest)+randomLength)
	msg = append(msg, "{"+offeredDigest+"}"...)
	msg = append(msg, make([]byte, randomLength)...)
	rand.Read(msg[len(msg)-randomLength:])
	if err := m.Send(challenge, msg); err != nil {
		return err
	}
	answer, err := m.RecvMax(maxMessage)
	if err != nil {
		return err
	}
	if err := verify(key, msg, answer); err != nil {
		m.Send(failure)
		return err
	}
	return m.Send(welcome)
}

// Answer proves to the peer that this side knows key: Python's
// answer_challenge.
func Answer(m Messenger, key []byte) error {
	msg, err := m.RecvMax(maxMessage)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(msg, challenge) {
		return authError("protocol error, expected a challenge, got %q", truncate(msg))
	}
	msg = msg[len(challenge):]
	if len(msg) < legacyLength {
		return authError("challenge too short: %d bytes", len(msg))
	}
	name, _, err := digestOf(msg)
	if err != nil {
		return err
	}
	var answer []byte
	if name == "" {
		answer = mac("md5", key, msg) // a legacy challenger
	} else {
		answer = append([]byte("{"+name+"}"), mac(name, key, msg)...)
	}
	if err := m.Send(answer); err != nil {
		return err
	}
	reply, err := m.RecvMax(maxMessage)
	if err != nil {
		return err
	}
	if !bytes.Equal(reply, welcome) {
		return authError("digest sent was rejected")
	}
	return nil
}

// verify checks the answer to challenge msg: a bare 16-byte HMAC-MD5 from
// a legacy peer, or "{name}" and the MAC of an allowed digest.
func verify(key, msg, answer []byte) error {
	name, sum, err := digestOf(answer)
	if err != nil {
		return err
	}
	if name == "" {
		name = "md5"
	}
	want := mac(name, key, msg)
	if len(sum) != len(want) {
		return authError("expected %s of length %d, got %d", name, len(want), len(sum))
	}
	if !hmac.Equal(sum, want) {
		return authError("digest received was wrong")
	}
	return nil
}

// digestOf splits a challenge or an answer into its digest's name and the
// rest: no name for the lengths of the legacy protocol (20 and 16 bytes).
func digestOf(msg []byte) (name string, rest []byte, err error) {
	if len(msg) == legacyLength || len(msg) == md5Length {
		return "", msg, nil
	}
	if len(msg) > 0 && msg[0] == '{' {
		if end := bytes.IndexByte(msg[1:min(len(msg), maxDigestName+2)], '}'); end > 0 {
			name := string(msg[1 : 1+end])
			if digests[name] != nil {
				return name, msg[2+end:], nil
			}
		}
	}
	return "", nil, authError("unsupported message length, missing digest prefix, or unsupported digest: %q", truncate(msg))
}

func mac(name string, key, msg []byte) []byte {
	h := hmac.New(digests[name], key)
	h.Write(msg)
	return h.Sum(nil)
}

func truncate(b []byte) []byte { return b[:min(len(b), 32)] }
