//go:build unix && !darwin

package conn

import "golang.org/x/sys/unix"

// socketType is that of a pipe's sockets: sequenced packets, so that a
// chunk of a message is delivered whole or not at all.
const socketType = unix.SOCK_SEQPACKET
