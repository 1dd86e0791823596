package authkey

import (
	"errors"
	"testing"

	"github.com/mpgo/multiprocessing/internal/mperr"
)

// pipe is one side of an in-memory exchange: what it sends goes to out,
// what it receives comes from in.
type pipe struct {
	in, out chan []byte
}

func (p pipe) Send(parts ...[]byte) error {
	var msg []byte
	for _, part := range parts {
		msg = append(msg, part...)
	}
	p.out <- msg
	return nil
}

func (p pipe) RecvMax(max uint64) ([]byte, error) {
	msg, ok := <-p.in
	if !ok {
		return nil, errors.New("closed")
	}
	if uint64(len(msg)) > max {
		return nil, errors.New("bad message length")
	}
	return msg, nil
}

func pair() (pipe, pipe) {
	a, b := make(chan []byte, 4), make(chan []byte, 4)
	return pipe{in: a, out: b}, pipe{in: b, out: a}
}

func TestHandshakeBothWays(t *testing.T) {
	for _, keys := range [][2]string{{"k", "k"}, {"k", "other"}, {"", ""}} {
		server, client := pair()
		done := make(chan error, 1)
		go func() {
			err := Deliver(server, []byte(keys[0]))
			if err == nil {
				err = Answer(server, []byte(keys[0]))
			}
			done <- err
		}()
		err := Answer(client, []byte(keys[1]))
		if err == nil {
			err = Deliver(client, []byte(keys[1]))
		}
		serr := <-done
		if same := keys[0] == keys[1]; same != (err == nil) || same != (serr == nil) {
			t.Errorf("keys %q: client %v, server %v", keys, err, serr)
		}
		if err != nil && !errors.Is(err, mperr.ErrAuthentication) {
			t.Errorf("keys %q: %v is not ErrAuthentication", keys, err)
		}
	}
}

// A legacy peer (Python 3.11 and older) challenges with 20 bytes and
// answers with a bare HMAC-MD5 of the whole challenge.
func TestLegacyPeer(t *testing.T) {
	key := []byte("key")
	us, them := pair()
	go func() {
		challenge := <-us.out
		them.out <- mac("md5", key, challenge[len("#CHALLENGE#"):])
	}()
	if err := deliverAndRead(us, key); err != nil {
		t.Fatal(err)
	}
	legacy := append([]byte("#CHALLENGE#"), make([]byte, 20)...)
	us.in <- legacy
	go func() { us.in <- []byte("#WELCOME#") }()
	if err := Answer(us, key); err != nil {
		t.Fatal(err)
	}
	if got := <-us.out; len(got) != 16 {
		t.Fatalf("a legacy challenge answered with %d bytes, not a bare MD5", len(got))
	}
}

func deliverAndRead(m pipe, key []byte) error {
	err := Deliver(m, key)
	<-m.out // #WELCOME#
	return err
}

func FuzzAnswer(f *testing.F) {
	f.Add([]byte("#CHALLENGE#{sha256}0123456789012345678901234567890123456789"))
	f.Add([]byte("#CHALLENGE#01234567890123456789"))
	f.Add([]byte("#CHALLENGE#{md5"))
	f.Fuzz(func(t *testing.T, challenge []byte) {
		us := pipe{in: make(chan []byte, 2), out: make(chan []byte, 2)}
		us.in <- challenge
		us.in <- []byte("#FAILURE#")
		err := Answer(us, []byte("key"))
		if err == nil {
			t.Fatalf("%q welcomed", challenge)
		}
	})
}

func FuzzDeliver(f *testing.F) {
	f.Add([]byte("{sha256}01234567890123456789012345678901"))
	f.Add(make([]byte, 16))
	f.Add([]byte("{sha3_384}"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		us := pipe{in: make(chan []byte, 1), out: make(chan []byte, 3)}
		us.in <- answer
		if err := Deliver(us, []byte("key")); err == nil {
			t.Fatalf("%q passed without the key's MAC of a random challenge", answer)
		}
	})
}
