//go:build unix

package multiprocessing

import "github.com/mpgo/multiprocessing/internal/launch"

// forkLauncher starts an exec of the program that inherits every
// descriptor open in the parent, at the same number, as Python's fork
// does, except the library's own (other children's bootstrap sockets must
// not keep their lifelines alive); environment, working directory, umask
// and resource limits pass through exec anyway (popen_fork).
var forkLauncher = launch.Fork
