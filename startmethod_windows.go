package multiprocessing

import "github.com/mpgo/multiprocessing/internal/launch"

var (
	platformMethods = []StartMethod{Spawn}
	knownMethods    = platformMethods
)

func launcherFor(m StartMethod) launch.Launcher {
	if m == Spawn {
		return spawnLauncher
	}
	return launch.Unsupported(m)
}
