package ownfd

import "os"

// FD returns f's handle as a number.
func FD(f *os.File) int { return int(f.Fd()) }
