//go:build unix

package multiprocessing

// knownMethods are those GetContext accepts; platformMethods (per
// system) those GetAllStartMethods lists, the default first.
var knownMethods = []StartMethod{Fork, Spawn, Forkserver}

func launcherFor(m StartMethod) launcher {
	switch m {
	case Fork:
		return forkMethod{}
	case Spawn:
		return spawnMethod{}
	case Forkserver:
		return forkserverLauncher
	}
	return unsupportedMethod(m)
}
