package multiprocessing

var (
	platformMethods = []StartMethod{Spawn}
	knownMethods    = platformMethods
)

func launcherFor(m StartMethod) launcher {
	if m == Spawn {
		return spawnMethod{}
	}
	return unsupportedMethod(m)
}
