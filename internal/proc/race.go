//go:build race

package proc

// RaceEnabled says whether the program was built with -race.
const RaceEnabled = true
