package bootstrap

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// ParseReports reads a child's report frames from data, up to the first
// that does not parse.
func ParseReports(data []byte) wire.Report {
	var report wire.Report
	r := bytes.NewReader(data)
	for {
		frame, err := wire.ReadFrame(r)
		if err != nil || report.Add(frame) != nil {
			return report
		}
	}
}

// WatchLifeline returns once sock, a child's lifeline, has ended: the
// kernel closes the other end when the process that held it dies. What
// arrives meanwhile is read and dropped.
func WatchLifeline(sock *os.File) {
	var buf [512]byte
	for {
		if _, err := sock.Read(buf[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
	}
}

// ReadChild reads a child's bootstrap message from sock and checks it
// against the token of its marker.
func ReadChild(sock *os.File, token []byte) (*wire.Bootstrap, error) {
	frame, err := wire.ReadFrame(sock)
	if err != nil {
		return nil, fmt.Errorf("reading the bootstrap message: %v", err)
	}
	boot, err := wire.DecodeBootstrap(frame)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(boot.Token), token) != 1 {
		return nil, errors.New("its token does not match the bootstrap message")
	}
	return boot, nil
}
