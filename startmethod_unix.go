//go:build unix

package multiprocessing

// platformMethods are the methods GetAllStartMethods lists, the default
// first; knownMethods also has those GetContext accepts but Start cannot
// use yet.
var (
	platformMethods = []StartMethod{Fork, Spawn}
	knownMethods    = []StartMethod{Fork, Spawn, Forkserver}
)

func launcherFor(m StartMethod) launcher {
	switch m {
	case Fork:
		return forkMethod{}
	case Spawn:
		return spawnMethod{}
	}
	return unsupportedMethod(m)
}
