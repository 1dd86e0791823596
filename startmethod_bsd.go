//go:build unix && !linux

package multiprocessing

var platformMethods = []StartMethod{Fork, Spawn}
