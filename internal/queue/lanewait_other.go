// The complement of lanewait_linux.go among the systems lane_unix.go is
// built for.

//go:build unix && !linux

package queue

import (
	"time"

	"github.com/mpgo/multiprocessing/internal/mperr"
)

// laneWaiter waits for a lane's next item. Lanes need memory files, which
// only Linux has here, so no process elsewhere ever gets one.
type laneWaiter struct{}

func newLaneWaiter(int) (*laneWaiter, error) { return nil, mperr.ErrUnsupported }

func (*laneWaiter) wait(time.Time) (bool, error) { return false, mperr.ErrUnsupported }
func (*laneWaiter) stop()                        {}
func (*laneWaiter) close()                       {}

// socketHolds reports true: there are no lanes here.
func socketHolds(int) bool { return true }
