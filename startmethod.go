package multiprocessing

// StartMethod names how a child is started. Go cannot fork a running
// runtime (only the calling thread would survive in the copy), so every
// method starts the same executable again; they differ in what the child
// inherits from the parent and in how fast it starts:
//
//   - Spawn: a fresh exec that inherits only stdout, stderr and the
//     descriptors of *os.File arguments; stdin is /dev/null.
//   - Fork: an exec that inherits everything the operating system can pass:
//     every descriptor open in the parent, at the same number, and stdin,
//     environment, working directory, umask and resource limits.
//   - Forkserver (Linux): children handed out by a server process,
//     started on the first Start (and again after it dies), so that a
//     Start costs a message, not an exec. The child inherits what a
//     spawned one does, from the server: stdout and stderr, environment,
//     umask and limits as they were when the server started; it enters
//     the parent's working directory, and gets the descriptors of its
//     arguments. Its os.Getppid is the server, as in Python;
//     ParentProcess is the process that started it. A Start whose
//     connection to the server fails to prove the key gives
//     ErrAuthentication. Elsewhere than on Linux, Start returns
//     ErrUnsupported.
type StartMethod string

// The start methods, as Python names them.
const (
	Spawn      StartMethod = "spawn"
	Fork       StartMethod = "fork"       // Unix only
	Forkserver StartMethod = "forkserver" // Unix only
)
