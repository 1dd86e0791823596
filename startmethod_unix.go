//go:build unix

package multiprocessing

import (
	"github.com/mpgo/multiprocessing/internal/forkserver"
	"github.com/mpgo/multiprocessing/internal/launch"
)

// knownMethods are those GetContext accepts; platformMethods those
// GetAllStartMethods lists, the default first.
var (
	knownMethods    = []StartMethod{Fork, Spawn, Forkserver}
	platformMethods = unixMethods()
)

func unixMethods() []StartMethod {
	if forkserver.Supported {
		return []StartMethod{Fork, Spawn, Forkserver}
	}
	return []StartMethod{Fork, Spawn}
}

func launcherFor(m StartMethod) launch.Launcher {
	switch m {
	case Fork:
		return forkLauncher
	case Spawn:
		return spawnLauncher
	case Forkserver:
		return forkserverLauncher
	}
	return launch.Unsupported(m)
}
