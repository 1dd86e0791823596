//go:build !linux

package forkserver

import (
	"errors"
	"os"

	"github.com/mpgo/multiprocessing/internal/launch"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// The forkserver needs pidfds and sequenced-packet sockets; it is built
// for Linux only, so far. Elsewhere Start returns an error that matches
// ErrUnsupported, and a process that was started as a server or a warm
// child says so and ends.

// Supported says whether this system has the forkserver start method.
const Supported = false

// WarmChildren is how many warm children a client keeps tickets for.
const WarmChildren = 0

var errNone = errors.New("this system has no forkserver")

// Client would be this process's connection to its forkserver.
type Client struct{}

// Options are how a server is started.
type Options struct{ WrongKey bool }

// Start returns a *launch.UnsupportedError.
func Start(Options) (*Client, error) { return nil, &launch.UnsupportedError{Method: "forkserver"} }

// Launch is not reached: no Client is made.
func (*Client) Launch(*wire.Bootstrap, []*os.File) (launch.Child, error) { return nil, errNone }

// Ended reports true: there is no server.
func (*Client) Ended() bool { return true }

// Hooks are what a warm child needs of the package that runs targets.
type Hooks struct {
	WarmUp     func()
	Become     func(boot *wire.Bootstrap)
	Run        func(boot *wire.Bootstrap, sock *os.File) int
	ParentGone func(daemon bool)
}

// Serve says that this system has no forkserver and returns 2.
func Serve(*os.File, *wire.ServerBoot) int {
	os.Stderr.WriteString("multiprocessing: " + errNone.Error() + "\n")
	return 2
}

// ReadHello returns an error: there is no forkserver to greet.
func ReadHello(*os.File, []byte) error { return errNone }

// RunWarm returns 2 at once.
func RunWarm(*os.File, *os.File, Hooks) int { return 2 }

// Pid returns 0: there is no server.
func (*Client) Pid() int { return 0 }

// Dir returns "".
func (*Client) Dir() string { return "" }

// Warm returns 0.
func (*Client) Warm() int { return 0 }

// TicketFDs returns nil.
func (*Client) TicketFDs() []int { return nil }
