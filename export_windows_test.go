package multiprocessing

// The forkserver hooks of export_unix_test.go: on Windows there is no
// forkserver.

func ForkserverPid() int           { return 0 }
func ForkserverDir() string        { return "" }
func ForkserverRunning() bool      { return false }
func ForkserverWarm() (int, error) { return 0, ErrUnsupported }
func SetForkserverWrongKey(bool)   {}
func ForkserverTicketFDs() []int   { return nil }

const ForkserverPool = 0
