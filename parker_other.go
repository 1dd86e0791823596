//go:build !linux

package multiprocessing

func newParker() parker { return newChanParker() }
