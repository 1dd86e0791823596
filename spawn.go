package multiprocessing

import "github.com/mpgo/multiprocessing/internal/launch"

// spawnLauncher starts a fresh exec of the program that inherits only
// stdout, stderr, the bootstrap socket and the descriptors of its
// arguments, with stdin read from /dev/null: Python's spawn
// (popen_spawn_posix). On Windows it says it is not supported yet.
var spawnLauncher = launch.Spawn
