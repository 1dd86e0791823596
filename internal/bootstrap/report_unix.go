//go:build unix

package bootstrap

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// DrainReports reads what a child reported over sock. The child has
// ended, so all it wrote is already in the socket's buffer: the reads do
// not wait, even if some other process still holds the child's end.
func DrainReports(sock *os.File) wire.Report {
	var data []byte
	rc, err := sock.SyscallConn()
	if err != nil {
		return wire.Report{}
	}
	buf := make([]byte, 64<<10)
	_ = rc.Control(func(fd uintptr) {
		// What is there, not what may come: sock may be a blocking one.
		_ = unix.SetNonblock(int(fd), true)
		for {
			n, err := unix.Read(int(fd), buf)
			if n <= 0 || err != nil {
				return
			}
			data = append(data, buf[:n]...)
		}
	})
	return ParseReports(data)
}
