// Package forkserver is the forkserver start method, on Linux for now. Go
// cannot fork a running program, so the server does what Python's forkserver is for, a start that costs a
// message instead of an exec, another way: it keeps warm children, the
// program exec'd and initialised up to Init, each waiting on a bootstrap
// socket made with it. The server hands each to its client ahead of need
// as a ticket: the child's pid, a pidfd, the other end of its bootstrap
// socket and of its control socket. A Start takes a ticket and writes the
// bootstrap over the bootstrap socket, with the descriptors of the
// handles on its first bytes: one message, one wakeup, from the parent to
// the child. The child reports over that socket, as under spawn; the
// control socket, which the parent keeps open while the child lives, is
// the child's lifeline. The client asks for a new ticket for each it
// takes, so that WarmChildren stay ready.
//
// The server is the program exec'd in server mode: it runs in the
// root package's init function, so none of the user's init functions runs in
// it. It is the real parent of the children (os.Getppid in a child is the
// server, as in Python): it reaps them and reports their exit codes to the
// process that holds their tickets.
package forkserver
