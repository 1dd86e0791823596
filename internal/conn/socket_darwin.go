package conn

import "golang.org/x/sys/unix"

// socketType is that of a pipe's sockets: a stream, as macOS has no
// sequenced-packet Unix sockets; a writer killed mid-message spoils the
// pipe there, as in Python.
const socketType = unix.SOCK_STREAM
