//go:build unix && !linux

package multiprocessing

import "time"

// laneWaiter waits for a lane's next item. Lanes need memory files, which
// only Linux has here, so no process elsewhere ever gets one.
type laneWaiter struct{}

func newLaneWaiter(int) (*laneWaiter, error) { return nil, ErrUnsupported }

func (*laneWaiter) wait(time.Time) (bool, error) { return false, ErrUnsupported }
func (*laneWaiter) stop()                        {}
func (*laneWaiter) close()                       {}
