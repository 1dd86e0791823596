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

// Open takes the pipe the child reads its bootstrap from.
func Open(fd int) *os.File { return os.NewFile(uintptr(fd), "bootstrap") }

var reports = sync.OnceValue(func() io.Writer {
	m, _ := Found()
	if m == nil || m.FD2 < 0 {
		return io.Discard
	}
	return os.NewFile(uintptr(m.FD2), "reports")
})

// Reports is where a child writes its reports: the pipe of its marker's
// second handle.
func Reports(*os.File) io.Writer { return reports() }

// ReadServer would read a forkserver's bootstrap message: there is no
// forkserver on Windows.
func ReadServer(*os.File, []byte) (*wire.ServerBoot, error) { return nil, mperr.ErrUnsupported }

// DrainReports reads what a child reported on r, its reports pipe, until
// the end: the child has ended, and with it its writing end.
func DrainReports(r *os.File) wire.Report {
	data, _ := io.ReadAll(r)
	return ParseReports(data)
}
