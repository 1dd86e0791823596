package bootstrap

import (
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/windows"

	"github.com/mpgo/multiprocessing/internal/mperr"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// On Windows a child's bootstrap is two inherited pipes: it reads its
// bootstrap message from one, which is then its lifeline (a pipe's reader
// sees its end when the process that holds the writing end dies), and
// writes its reports to the other. A pipe's handle takes reads and writes
// one at a time, so one pipe for both would make the reports wait behind
// the lifeline's read.

// CheckFD makes sure handle fd is an open pipe before anything waits on
// it.
func CheckFD(fd int) error {
	t, err := windows.GetFileType(windows.Handle(fd))
	if err != nil {
		return err
	}
	if t != windows.FILE_TYPE_PIPE {
		return errors.New("not a pipe")
	}
	return nil
}

// Open takes the pipe the child reads its bootstrap from, which no process
// it starts inherits (see Own).
func Open(fd int) *os.File {
	Own([]int{fd})
	return os.NewFile(uintptr(fd), "bootstrap")
}

// Own keeps the handles a child inherited from the processes it starts:
// they came inheritable, and a start without a handle list (by C code,
// say) would pass them on, holding the pipes open.
func Own(fds []int) {
	for _, fd := range fds {
		windows.SetHandleInformation(windows.Handle(fd), windows.HANDLE_FLAG_INHERIT, 0)
	}
}

var reports = sync.OnceValue(func() io.Writer {
	m, _ := Found()
	if m == nil || m.FD2 < 0 {
		return io.Discard
	}
	Own([]int{m.FD2})
	return os.NewFile(uintptr(m.FD2), "reports")
})

// Reports is where a child writes its reports: the pipe of its marker's
// second handle.
func Reports(*os.File) io.Writer { return reports() }

// ReadServer would read a forkserver's bootstrap message: there is no
// forkserver on Windows.
func ReadServer(*os.File, []byte) (*wire.ServerBoot, error) { return nil, mperr.ErrUnsupported }
