//go:build unix

package bootstrap

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// CheckFD makes sure fd is an open socket before anything waits on it, and
// keeps it from programs this one execs.
func CheckFD(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return errors.New("not a socket")
	}
	unix.CloseOnExec(fd)
	return nil
}

// Open makes the bootstrap socket one of the library's own descriptors,
// which the fork method does not pass on: a grandchild must not hold its
// parent's lifeline.
func Open(fd int) *os.File { return ownfd.Adopt(fd, "bootstrap", true) }

// ReadServer reads a forkserver's bootstrap message.
func ReadServer(sock *os.File, token []byte) (*wire.ServerBoot, error) {
	frame, err := wire.ReadFrame(sock)
	if err != nil {
		return nil, fmt.Errorf("reading the forkserver's bootstrap message: %v", err)
	}
	boot, err := wire.DecodeServerBoot(frame)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(boot.Token), token) != 1 {
		return nil, errors.New("its token does not match the forkserver's bootstrap message")
	}
	return boot, nil
}

// Own does nothing here: a child's descriptors from its parent are passed
// on only to the children it gives them to (spawn), or as fork passes the
// user's own.
func Own([]int) {}

// Reports is where a child writes its reports: its bootstrap socket.
func Reports(sock *os.File) io.Writer { return sock }
