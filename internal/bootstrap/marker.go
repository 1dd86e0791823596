// Package bootstrap is the contract between a parent and the child it
// starts, both sides: the environment marker that tells a program it was
// started as a child, the bootstrap message and its descriptors, the
// reports the child sends back (Started, then its outcome), and the
// lifeline, the bootstrap socket whose end tells the child its parent is
// gone.
//
// The marker is read in this package's init, which runs before the
// variables of any package that imports it: the root knows whether this
// process is a child before its own variables are set.
package bootstrap

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// MarkerName is the environment variable that tells a program it was
// started as a child: "VERSION:FD:TOKEN", where FD is its end of the
// bootstrap socket and TOKEN must match the bootstrap message, with
// ":ROLE" for the forkserver's processes. On Windows FD is "R+W": the
// handles of the pipe it reads its bootstrap from and of the pipe it
// writes its reports to.
const MarkerName = "MPGO_CHILD"

// The roles of the forkserver's processes in their markers.
const (
	RoleServer = "server"
	RoleWarm   = "warm"
)

// Timeout bounds how long a child waits for its bootstrap message, which
// its parent sends as soon as the child exists: only a marker that points
// at some unrelated socket makes it wait that long. (A variable for the
// tests.)
var Timeout = 30 * time.Second

// Marker is a child's marker, as found in its environment.
type Marker struct {
	Raw   string // as found, for messages
	FD    int    // the bootstrap socket (on Windows, the pipe it reads)
	FD2   int    // on Windows, the pipe it writes its reports to; else -1
	Token []byte
	Role  string // "", RoleServer or RoleWarm
}

// found is this process's marker; err says what is wrong with it.
var (
	found    *Marker
	foundErr error
)

// The marker is removed so that no user code sees it and no program the
// child starts inherits it.
func init() {
	raw, ok := os.LookupEnv(MarkerName)
	if !ok {
		return
	}
	os.Unsetenv(MarkerName)
	found, foundErr = parseMarker(raw)
	if found == nil {
		found = &Marker{Raw: raw}
	}
}

// Found returns this process's marker, or nil if it was not started as a
// child, and what is wrong with the marker if it does not check out.
func Found() (*Marker, error) { return found, foundErr }

// StartedAsChild reports whether this process was started with a marker,
// whether or not it checks out.
func StartedAsChild() bool { return found != nil }

func parseMarker(raw string) (*Marker, error) {
	parts := strings.Split(raw, ":")
	if len(parts) != 3 && len(parts) != 4 {
		return nil, fmt.Errorf("it is not VERSION:FD:TOKEN")
	}
	if parts[0] != strconv.Itoa(wire.Version) {
		return nil, fmt.Errorf("it has version %q, this program understands %d", parts[0], wire.Version)
	}
	m := &Marker{Raw: raw, Token: []byte(parts[2]), FD2: -1}
	if len(parts) == 4 {
		m.Role = parts[3]
	}
	if m.Role != "" && m.Role != RoleServer && m.Role != RoleWarm {
		return nil, fmt.Errorf("unknown role %q", m.Role)
	}
	fds, fd2, pair := strings.Cut(parts[1], "+")
	fd, err := strconv.Atoi(fds)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%q is not a descriptor number", parts[1])
	}
	m.FD = fd
	if pair {
		if m.FD2, err = strconv.Atoi(fd2); err != nil || m.FD2 < 3 {
			return nil, fmt.Errorf("%q is not a pair of handles", parts[1])
		}
	}
	return m, nil
}

// MarkerValue is the environment entry of a child whose bootstrap socket
// is descriptor fd.
func MarkerValue(fd int, token, role string) string {
	v := fmt.Sprintf("%s=%d:%d:%s", MarkerName, wire.Version, fd, token)
	if role != "" {
		v += ":" + role
	}
	return v
}

// MarkerPair is the environment entry of a child that reads its
// bootstrap from handle r and writes its reports to handle w (Windows).
func MarkerPair(r, w int, token string) string {
	return fmt.Sprintf("%s=%d:%d+%d:%s", MarkerName, wire.Version, r, w, token)
}

// NewToken returns a fresh random token, in hex, for a marker or a hello.
func NewToken() string {
	token := make([]byte, 16)
	rand.Read(token)
	return hex.EncodeToString(token)
}
