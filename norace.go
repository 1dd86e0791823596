//go:build !race

package multiprocessing

const raceEnabled = false
