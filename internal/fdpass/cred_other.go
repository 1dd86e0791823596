//go:build unix && !linux

package fdpass

import (
	"os"

	"golang.org/x/sys/unix"
)

// credSpace: no credentials come with messages here.
const credSpace = 0

func isCredentials(*unix.SocketControlMessage) bool { return false }

func credentialsOnly(oob []byte) bool { return len(oob) == 0 }

func senderPid(*unix.SocketControlMessage) int { return 0 }

// PassCred does nothing here: RecvMsgHeldFrom's pid is always 0.
func PassCred(*os.File) error { return nil }
