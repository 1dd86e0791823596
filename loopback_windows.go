package multiprocessing

// On Windows a queue passed to a child is served by its maker on a
// loopback port (see internal/netconn): Windows links package net without
// cgo, so the import costs its programs nothing of their starts.
import _ "github.com/mpgo/multiprocessing/internal/netconn"
