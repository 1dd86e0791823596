package bootstrap

import (
	"bytes"
	"errors"
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
