package forkserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// The two sides of the challenge sign different labels, so that neither
// side's proof can be replayed as the other's.
var (
	clientLabel = []byte("mpgo forkserver client")
	serverLabel = []byte("mpgo forkserver server")
)

func mac(key, label, nonce []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(label)
	h.Write(nonce)
	return h.Sum(nil)
}

// answerChallenge is the client's side of the handshake.
func answerChallenge(conn *os.File, key []byte) error {
	m, err := recvFS(conn)
	if err != nil {
		return fmt.Errorf("waiting for the server's challenge: %w", err)
	}
	if m.Kind == wire.FSDenied {
		return fmt.Errorf("%w: the forkserver refused this connection", mperr.ErrAuthentication)
	}
	if m.Kind != wire.FSChallenge {
		return fmt.Errorf("%w: the forkserver sent %q instead of a challenge", mperr.ErrAuthentication, m.Kind)
	}
	nonce := make([]byte, wire.FSNonce)
	rand.Read(nonce)
	answer := append(mac(key, clientLabel, m.Data), nonce...)
	if err := fdpass.SendMsg(conn, wire.FSMessage{Kind: wire.FSAnswer, Data: answer}.Encode()); err != nil {
		return err
	}
	m, err = recvFS(conn)
	switch {
	case errors.Is(err, io.EOF) || err == nil && m.Kind == wire.FSDenied:
		return fmt.Errorf("%w: the forkserver refused our authkey", mperr.ErrAuthentication)
	case err != nil:
		return err
	case m.Kind != wire.FSProof || !hmac.Equal(m.Data, mac(key, serverLabel, nonce)):
		return fmt.Errorf("%w: the forkserver did not prove it has the authkey", mperr.ErrAuthentication)
	}
	return nil
}

// deliverChallenge is the server's side of the handshake.
func deliverChallenge(conn *os.File, key []byte) error {
	nonce := make([]byte, wire.FSNonce)
	rand.Read(nonce)
	if err := fdpass.SendMsg(conn, wire.FSMessage{Kind: wire.FSChallenge, Data: nonce}.Encode()); err != nil {
		return err
	}
	m, err := recvFS(conn)
	if err != nil {
		return err
	}
	if m.Kind != wire.FSAnswer || !hmac.Equal(m.Data[:wire.FSNonce], mac(key, clientLabel, nonce)) {
		_ = fdpass.SendMsg(conn, wire.FSMessage{Kind: wire.FSDenied}.Encode())
		return mperr.ErrAuthentication
	}
	proof := mac(key, serverLabel, m.Data[wire.FSNonce:])
	return fdpass.SendMsg(conn, wire.FSMessage{Kind: wire.FSProof, Data: proof}.Encode())
}

// recvFS receives one message that carries no descriptors.
func recvFS(conn *os.File) (wire.FSMessage, error) {
	m, fds, err := recvFSFiles(conn)
	if err == nil && len(fds) > 0 {
		ownfd.CloseFDs(fds)
		return m, fmt.Errorf("forkserver message %q with %d unexpected descriptors", m.Kind, len(fds))
	}
	return m, err
}

func recvFSFiles(conn *os.File) (wire.FSMessage, []int, error) {
	buf := make([]byte, wire.FSMaxMessage+1)
	n, fds, err := ownfd.Recv(conn, buf)
	if err != nil {
		return wire.FSMessage{}, nil, err
	}
	m, err := wire.ParseFS(buf[:n])
	if err != nil {
		ownfd.CloseFDs(fds)
		return m, nil, err
	}
	return m, fds, nil
}
