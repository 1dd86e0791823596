//go:build unix && !linux

package ownfd

import "github.com/mpgo/multiprocessing/internal/mperr"

// memfd would make an anonymous memory file; x/sys has no memfd_create
// here.
func memfd(string) (int, error) { return -1, mperr.ErrUnsupported }
