// The complement of parker_linux.go: no eventfd elsewhere.

//go:build !linux

package queue

func newParker() parker { return newChanParker() }
