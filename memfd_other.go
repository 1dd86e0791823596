//go:build unix && !linux

package multiprocessing

// memfd would make an anonymous memory file; without one a queue has no
// lane, and its Gets in other processes ask the broker.
func memfd(string) (int, error) { return -1, ErrUnsupported }
