//go:build unix

package multiprocessing

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mpgo/multiprocessing/internal/ownfd"
)

// checkBootstrapFD makes sure fd is an open socket before anything waits on
// it.
func checkBootstrapFD(fd int) error {
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

// openBootstrap makes the bootstrap socket one of the library's own
// descriptors, which the fork method does not pass on: a grandchild must
// not hold its parent's lifeline.
func openBootstrap(fd int) (*os.File, error) {
	return ownfd.Adopt(fd, "bootstrap", true), nil
}

func killSelf() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
