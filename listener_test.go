package multiprocessing_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
	mpc "github.com/mpgo/multiprocessing/connection"
)

// pythons are the interpreters to talk to: python3, and the 3.12 and 3.13
// that pyenv keeps on these machines; each name maps to its path.
func pythons(t *testing.T) map[string]string {
	t.Helper()
	found := map[string]string{}
	if p, err := exec.LookPath("python3"); err == nil {
		found["python3"] = p
	}
	if root, err := exec.Command("pyenv", "root").Output(); err == nil {
		for _, v := range []string{"3.12", "3.13"} {
			matches, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(root)), "versions", v+".*", "bin", "python3"))
			if len(matches) > 0 {
				found[v] = matches[0]
			}
		}
	}
	if len(found) == 0 {
		t.Skip("no python3")
	}
	return found
}

// pythonPeer is a Python program for the interop tests. As a client
// ("client ADDR KEY") it dials, and for each size sends a message of that
// many bytes and checks that the same comes back; as a listener
// ("listen ADDR KEY") it prints its address, accepts one connection and
// echoes what it receives until the end. ADDR is host:port or a socket
// path, KEY hex or "-" for none. An AuthenticationError prints its name and
// exits with 3.
const pythonPeer = `
import sys
from multiprocessing.connection import Client, Listener
from multiprocessing import AuthenticationError

role, addr, key = sys.argv[1], sys.argv[2], sys.argv[3]
key = None if key == '-' else bytes.fromhex(key)
if ':' in addr:
    host, port = addr.rsplit(':', 1)
    addr = (host, int(port))

def pattern(n):
    return (bytes(range(251)) * (n // 251 + 1))[:n]

try:
    if role == 'client':
        c = Client(addr, authkey=key)
        for n in (0, 1024, 64 << 20):
            c.send_bytes(pattern(n))
            back = c.recv_bytes()
            assert back == pattern(n), (n, len(back))
        c.close()
        print('ok')
    else:
        l = Listener(addr, authkey=key)
        a = l.address
        print(a if isinstance(a, str) else '%s:%d' % a, flush=True)
        c = l.accept()
        try:
            while True:
                c.send_bytes(c.recv_bytes())
        except EOFError:
            pass
        print('ok')
except AuthenticationError as e:
    print('AuthenticationError', e)
    sys.exit(3)
`

func pattern(n int) []byte {
	return bytes.Repeat(func() []byte {
		b := make([]byte, 251)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}(), n/251+1)[:n]
}

// pythonCommand is pythonPeer run by python with args, bounded by ctx.
func pythonCommand(t *testing.T, ctx context.Context, python string, args ...string) *exec.Cmd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "peer.py")
	require.NoError(t, os.WriteFile(path, []byte(pythonPeer), 0o644))
	return exec.CommandContext(ctx, python, append([]string{path}, args...)...)
}

func keyArg(key []byte) string {
	if key == nil {
		return "-"
	}
	return hex.EncodeToString(key)
}

// listenAddr is a fresh address on network: a port of 127.0.0.1, or a
// socket in a temporary directory.
func listenAddr(t *testing.T, network string) string {
	if network == "unix" {
		return filepath.Join(t.TempDir(), "s")
	}
	return "127.0.0.1:0"
}

// echo answers each message on c with the same bytes until the end.
func echo(c *mp.Connection) error {
	for {
		b, err := c.RecvBytes()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.SendBytes(b); err != nil {
			return err
		}
	}
}

func TestPythonClientsOfAGoListener(t *testing.T) {
	for version, python := range pythons(t) {
		for _, network := range networks {
			for _, key := range [][]byte{[]byte("secret key"), nil} {
				t.Run(fmt.Sprintf("%s/%s/key=%v", version, network, key != nil), func(t *testing.T) {
					l, err := mpc.Listen(network, listenAddr(t, network), key)
					require.NoError(t, err)
					defer l.Close()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					cmd := pythonCommand(t, ctx, python, "client", l.Addr().String(), keyArg(key))
					out := &bytes.Buffer{}
					cmd.Stdout, cmd.Stderr = out, out
					require.NoError(t, cmd.Start())
					c, err := l.Accept()
					require.NoError(t, err)
					require.NoError(t, echo(c))
					require.NoError(t, cmd.Wait(), out.String())
					assert.Equal(t, "ok\n", out.String())
				})
			}
		}
	}
}

func TestGoClientOfAPythonListener(t *testing.T) {
	for version, python := range pythons(t) {
		for _, network := range networks {
			t.Run(version+"/"+network, func(t *testing.T) {
				key := []byte("another key")
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := pythonCommand(t, ctx, python, "listen", listenAddr(t, network), keyArg(key))
				stdout, err := cmd.StdoutPipe()
				require.NoError(t, err)
				cmd.Stderr = os.Stderr
				require.NoError(t, cmd.Start())
				lines := bufio.NewScanner(stdout)
				require.True(t, lines.Scan(), "the listener printed no address")
				c, err := mpc.DialContext(ctx, network, lines.Text(), key)
				require.NoError(t, err)
				for _, n := range []int{0, 1024, 64 << 20} {
					require.NoError(t, c.SendBytes(pattern(n)))
					back, err := c.RecvBytes()
					require.NoError(t, err)
					require.True(t, bytes.Equal(pattern(n), back), "%d bytes came back changed", n)
				}
				buf := make([]byte, 1<<20)
				for _, n := range []int{0, 1024, 2 << 20} {
					require.NoError(t, c.SendBytes(pattern(n)))
					got, err := c.RecvBytesInto(buf)
					if n > len(buf) {
						var short *mp.BufferTooShortError
						require.ErrorAs(t, err, &short)
						require.True(t, bytes.Equal(pattern(n), short.Message), "%d bytes came back changed", n)
						continue
					}
					require.NoError(t, err)
					require.True(t, bytes.Equal(pattern(n), buf[:got]), "%d bytes came back changed", n)
				}
				require.NoError(t, c.Close())
				require.True(t, lines.Scan())
				assert.Equal(t, "ok", lines.Text())
				require.NoError(t, cmd.Wait())
			})
		}
	}
}

func TestWrongKeyFailsOnBothSides(t *testing.T) {
	for version, python := range pythons(t) {
		t.Run(version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// A Python client with the wrong key: AuthenticationError
			// there, nothing accepted here.
			l, err := mpc.Listen("tcp", "127.0.0.1:0", []byte("right"))
			require.NoError(t, err)
			defer l.Close()
			out, err := pythonCommand(t, ctx, python, "client", l.Addr().String(), keyArg([]byte("wrong"))).CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, string(out))
			assert.Equal(t, 3, exit.ExitCode())
			assert.Contains(t, string(out), "AuthenticationError")
			good, err := mpc.Dial("tcp", l.Addr().String(), []byte("right"))
			require.NoError(t, err)
			defer good.Close()
			c, err := l.Accept()
			require.NoError(t, err, "the first connection Accept returns is the good one")
			require.NoError(t, c.SendBytes([]byte("hi")))
			b, err := good.RecvBytes()
			require.NoError(t, err)
			assert.Equal(t, "hi", string(b))

			// A Python listener, a Go client with the wrong key.
			cmd := pythonCommand(t, ctx, python, "listen", "127.0.0.1:0", keyArg([]byte("right")))
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			lines := bufio.NewScanner(stdout)
			require.True(t, lines.Scan())
			_, err = mpc.Dial("tcp", lines.Text(), []byte("wrong"))
			assert.ErrorIs(t, err, mp.ErrAuthentication)
			require.True(t, lines.Scan())
			assert.Contains(t, lines.Text(), "AuthenticationError")
			cmd.Wait()
		})
	}
}

func TestSilentPeersDelayNobody(t *testing.T) {
	key := []byte("k")
	l, err := mpc.Listen("tcp", "127.0.0.1:0", key)
	require.NoError(t, err)
	defer l.Close()
	for range 10 {
		silent, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer silent.Close()
	}
	// A peer that vanishes in the middle of its handshake.
	half, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	half.Write([]byte{0, 0, 0, 40, '{'})
	half.Close()

	began := time.Now()
	c, err := mpc.Dial("tcp", l.Addr().String(), key)
	require.NoError(t, err)
	defer c.Close()
	got, err := l.Accept()
	require.NoError(t, err)
	defer got.Close()
	assert.Less(t, time.Since(began), 2*time.Second)

	// A client with a key against a Listener without one: an error at its
	// context's deadline (HandshakeTimeout without one), not Python's hang.
	open, err := mpc.Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	defer open.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = mpc.DialContext(ctx, "tcp", open.Addr().String(), key)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// A peer that vanishes gives its Connection io.EOF.
	c2, err := mpc.Dial("tcp", open.Addr().String(), nil)
	require.NoError(t, err)
	peer, err := open.Accept()
	require.NoError(t, err)
	require.NoError(t, c2.Close())
	_, err = peer.RecvBytes()
	assert.ErrorIs(t, err, io.EOF)

	require.NoError(t, l.Close())
	_, err = l.Accept()
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = mpc.Listen("udp", "127.0.0.1:0", nil)
	assert.ErrorIs(t, err, mp.ErrBadArgs)
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, pool
}

func TestTLSByComposition(t *testing.T) {
	cert, pool := selfSigned(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	key := []byte("over tls")
	l := mpc.NewListener(tls.NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}), key)
	defer l.Close()
	raw, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	c, err := mpc.NewClient(tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}), key)
	require.NoError(t, err)
	defer c.Close()
	s, err := l.Accept()
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, c.Send(map[string]int{"answer": 42}))
	var m map[string]int
	require.NoError(t, s.Recv(&m))
	assert.Equal(t, 42, m["answer"])
	require.NoError(t, s.SendBytes(pattern(1<<20)))
	ok, err := c.Poll(5 * time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	b, err := c.RecvBytes()
	require.NoError(t, err)
	assert.True(t, bytes.Equal(pattern(1<<20), b))
	ok, err = c.Poll(0)
	assert.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, -1, c.Fileno(), "a TLS connection has no descriptor of its own")

	// The wrong certificate: the TLS handshake fails, and so does NewClient.
	raw2, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	_, err = mpc.NewClient(tls.Client(raw2, &tls.Config{ServerName: "127.0.0.1"}), key)
	require.Error(t, err)
	assert.False(t, errors.Is(err, mp.ErrAuthentication))
}
