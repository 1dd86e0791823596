package proc

import (
	"os"
	"strings"
)

// Env is the environment of a child: the parent's, and marker.
//
// A test binary built with -cover and run by go test gets its coverage
// directory as -test.gocoverdir, which only the testing package reads; a
// child never returns through it, so it gets the directory as GOCOVERDIR,
// and the Go runtime writes the child's counters when it exits.
//
// A race-enabled Go program sleeps a second when it exits with code 0, so
// that late goroutines can still report races (GORACE's atexit_sleep_ms).
// A child has joined its target when it exits, so unless the user chose a
// value, its children skip that sleep, which would otherwise dominate every
// Join under go test -race.
func Env(marker string) []string {
	env := append(os.Environ(), marker)
	if os.Getenv("GOCOVERDIR") == "" {
		for _, arg := range os.Args[1:] {
			if dir, ok := strings.CutPrefix(arg, "-test.gocoverdir="); ok {
				env = append(env, "GOCOVERDIR="+dir)
			}
		}
	}
	if !RaceEnabled {
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
