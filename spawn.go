package multiprocessing

import (
	"os"
	"strings"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// spawnMethod starts a fresh exec of the program that inherits only stdout,
// stderr, the bootstrap socket and the descriptors of its arguments, with
// stdin read from /dev/null: Python's spawn.
type spawnMethod struct{}

func (spawnMethod) launch(boot *wire.Bootstrap, files []*os.File) (popen, error) {
	return launchExec(boot, files, spawnDescriptors)
}

// childEnv is the environment of a child: the parent's, and marker.
//
// A race-enabled Go program sleeps a second when it exits with code 0, so
// that late goroutines can still report races (GORACE's atexit_sleep_ms).
// A child has joined its target when it exits, so unless the user chose a
// value, its children skip that sleep, which would otherwise dominate every
// Join under go test -race.
func childEnv(marker string) []string {
	env := append(os.Environ(), marker)
	if !raceEnabled {
		return env
	}
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GORACE="); ok {
			if !strings.Contains(v, "atexit_sleep_ms") {
				env[i] = kv + " atexit_sleep_ms=0"
			}
			return env
		}
	}
	return append(env, "GORACE=atexit_sleep_ms=0")
}
