// Package multiprocessing runs registered Go functions in child processes,
// with the names and semantics of Python's multiprocessing: Process, Start,
// Join, exit codes, daemons, start methods and contexts.
//
// A child is the same executable started again. It never runs the parent's
// main: it runs one registered target and exits.
//
//	func action(max int) error {
//		fmt.Println(os.Getpid(), "counts to", max)
//		return nil
//	}
//
//	func init() { mp.Register(action) }
//
//	func main() {
//		mp.Init()
//		p := mp.NewProcess(action, 100)
//		if err := p.Start(); err != nil {
//			log.Fatal(err)
//		}
//		if err := p.Join(); err != nil {
//			log.Fatal(err)
//		}
//	}
//
// (with import mp "github.com/mpgo/multiprocessing").
//
// # How children start
//
// Start execs the program again (/proc/self/exe on Linux, so a binary
// replaced on disk does not matter) with the parent's os.Args, working
// directory and environment, plus an environment marker that the child's
// copy of this package reads and removes during package initialisation,
// before any of the user's init functions run. The marker names an
// inherited socket, over which the parent sends the bootstrap message
// (target, arguments, name, daemon flag, authkey) and the child reports that
// its target started and how it ended. The program's stdout and stderr are
// left to the user: printing never disturbs a start.
//
// The same socket is the child's lifeline: when the parent dies, the child
// sees it close. ParentProcess().Done() is closed then, and a daemon child
// ends itself (on Linux, the kernel's parent-death signal kills it too).
//
// A marker that does not check out (wrong version, no such socket, a token
// that does not match) makes the program print why on stderr and exit with
// code 2 before any of the user's code runs.
//
// # Init
//
// Call Init first in main. In the main process it returns at once; in a
// child it runs the target and exits, with Python's exit code: 0 when the
// target returns nil, 1 when it returns an error or panics (stderr gets
// "Process <name>:" and the message), n after os.Exit(n), and -N when
// signal N killed it. If a child does not call Init it would run the
// parent's main: Start refuses to work there, and the parent's Join
// reports "the child did not call multiprocessing.Init".
//
// # Registration
//
// Targets are registered in init functions, so that the parent and every
// child know the same targets by the same names: Register(fn) for a named
// function, RegisterName(name, v) for anything else, Register(&T{}) for a
// Runner, the analogue of a Process subclass that overrides run(). The
// arguments of a target travel gob-encoded (register with gob.Register the
// concrete types you pass as interfaces); an *os.File travels as a
// descriptor. Start checks them against the target's parameters, before any
// process exists.
//
// # Queues and pipes
//
// Queue, SimpleQueue and JoinableQueue are typed, process-shared queues;
// Pipe returns two Connections. Pass them to a target as arguments (or
// Runner fields) and they arrive usable in the child, under every start
// method. A queue's items live in the process that made it, which serves
// the others: Put on an unbounded queue never waits for a reader, a child
// that put items nobody has read still exits, and the items of a child that
// has been joined are in the queue before anything put afterwards. Other
// processes get from an unbounded queue without asking its maker: it fills
// a socket they read (on Linux), so an item costs one wakeup, as on a Pipe.
// A bounded queue's Gets ask its maker, which counts every item taken so as
// to let a waiting Put in.
//
// # Locks and shared memory
//
// Lock, RLock, Semaphore, Event, Condition, Barrier, Value and Array are
// handles too: passed to a target, the child uses the same object. On
// Linux each is a memory file that travels as a descriptor, with futexes
// in it; nothing is named in the file system and nothing needs cleaning
// up. A lock's holder is a process: when it dies holding the lock, the next
// Acquire takes the lock over and returns ErrOwnerDied. Notifiers never wait
// for waiters, so a waiter that dies blocks nobody. On Windows they are
// file mappings passed by handle, whose waiters look every millisecond.
// SharedMemory is Python's named block, which unrelated processes, Go or
// Python, open by name (Linux). macOS and FreeBSD return ErrUnsupported
// for now.
//
// # Between programs
//
// Package connection (github.com/mpgo/multiprocessing/connection) is
// Python's multiprocessing.connection: Listen and Dial, over Unix sockets
// and TCP, speaking Python's protocol, so that a Go program and a Python
// program exchange SendBytes and send_bytes messages either way, after
// Python's HMAC handshake when there is a key; its Serve and DialQueue
// serve a queue to other programs. It is a package of its own so that a
// program without it does not link package net (with cgo, a dynamically
// linked binary: slower child starts).
//
// # Start methods
//
// Go cannot fork a running runtime, so every start method execs the
// program; they differ in what the child inherits. Spawn passes only stdout,
// stderr and the descriptors of *os.File arguments, with stdin from
// /dev/null. Fork passes every descriptor open in the parent at the same
// number, stdin included. Forkserver (Linux) starts children from a server
// process that keeps warm children: the program exec'd and initialised up
// to Init, waiting; a Start hands one its bootstrap in a single message,
// so it costs a fraction of a millisecond instead of an exec. Its children
// inherit what spawn's do, from the server (stdout, stderr, environment,
// umask and limits as they were when the server started), and enter the
// parent's working directory. The server listens in a private directory,
// refuses peers of another user, and each connection proves a key of the
// server's both ways (an HMAC challenge). Fork is the default on Unix, spawn on
// Windows; SetStartMethod changes the default and GetContext gives a
// Context for one method.
//
// # Daemons and exit
//
// Go runs nothing when main returns, so children are not joined then as in
// Python: defer Shutdown() in main to terminate daemon children and join the
// others. Daemon children never outlive their parent, even when it is
// killed with SIGKILL; non-daemon children keep running, as in Python.
//
// # Tests
//
// A test binary is a program like any other: call Init from TestMain.
//
//	func TestMain(m *testing.M) { mp.Init(); os.Exit(m.Run()) }
//
// Coverage counters of children are written where the parent's go, so
// go test -cover counts code that ran in children; under go test -race the
// children skip the race detector's one-second sleep at exit.
package multiprocessing
