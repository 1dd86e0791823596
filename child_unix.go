//go:build unix

package multiprocessing

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
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

func openBootstrap(fd int) (*os.File, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "bootstrap"), nil
}

func killSelf() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
