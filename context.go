package multiprocessing

import (
	"fmt"
	"slices"
	"sync"
)

// Context is a start method with the functions that use it: Python's
// multiprocessing context. GetContext returns one per method, and the
// default context, whose method is chosen by SetStartMethod or, failing
// that, fixed to the platform's default the first time it is used.
type Context struct {
	method StartMethod // "" for the default context
}

var (
	defaultContext = &Context{}
	contexts       = map[StartMethod]*Context{}
	methodMu       sync.Mutex
	actualMethod   StartMethod // the default context's method once fixed
)

func init() {
	for _, m := range knownMethods {
		contexts[m] = &Context{method: m}
	}
}

// GetContext returns the context of method, the same one each time, or the
// default context for "". An unknown method, or one this operating system
// does not have, gives ErrUnknownStartMethod.
func GetContext(method StartMethod) (*Context, error) {
	if method == "" {
		return defaultContext, nil
	}
	c, ok := contexts[method]
	if !ok {
		return nil, fmt.Errorf("%w: cannot find context for '%s'", ErrUnknownStartMethod, method)
	}
	return c, nil
}

// SetStartMethod sets the default context's start method. Once the method
// is set, or fixed by use (NewProcess(…).Start, GetStartMethod(false)), it
// returns ErrContextSet unless force is true; with force, "" unsets it. In a
// child the method it was started with is already set.
func SetStartMethod(method StartMethod, force bool) error {
	methodMu.Lock()
	defer methodMu.Unlock()
	if actualMethod != "" && !force {
		return ErrContextSet
	}
	if method == "" && force {
		actualMethod = ""
		return nil
	}
	if _, err := GetContext(method); err != nil {
		return err
	}
	actualMethod = method
	return nil
}

// GetStartMethod returns the default context's start method. When none is
// set it returns "" if allowNone, and otherwise fixes it to the platform's
// default (fork on Unix, spawn on Windows) and returns that.
func GetStartMethod(allowNone bool) StartMethod {
	methodMu.Lock()
	defer methodMu.Unlock()
	if actualMethod == "" {
		if allowNone {
			return ""
		}
		actualMethod = platformMethods[0]
	}
	return actualMethod
}

// forceStartMethod sets the method a child was started with.
func forceStartMethod(m StartMethod) {
	methodMu.Lock()
	defer methodMu.Unlock()
	actualMethod = m
}

// GetAllStartMethods lists the start methods this platform has, the default
// first: fork, spawn and forkserver on Linux; fork and spawn on other Unix
// systems (forkserver's context exists there, but its Start returns
// ErrUnsupported); spawn on Windows.
func GetAllStartMethods() []StartMethod { return slices.Clone(platformMethods) }

// StartMethod returns the context's start method. For the default context
// that is GetStartMethod(false).
func (c *Context) StartMethod() StartMethod {
	if c.method != "" {
		return c.method
	}
	return GetStartMethod(false)
}

// Process is NewProcess with this context's start method.
func (c *Context) Process(target any, args ...any) *Process {
	return newProcess(c, target, args)
}

// CurrentProcess is the package's CurrentProcess.
func (c *Context) CurrentProcess() *Process { return CurrentProcess() }

// ParentProcess is the package's ParentProcess.
func (c *Context) ParentProcess() *Process { return ParentProcess() }

// ActiveChildren is the package's ActiveChildren.
func (c *Context) ActiveChildren() []*Process { return ActiveChildren() }

// CPUCount is the package's CPUCount.
func (c *Context) CPUCount() int { return CPUCount() }

// Queue is NewQueue[any] (see Queue for what travels in an any).
func (c *Context) Queue(maxsize int) (*Queue[any], error) { return NewQueue[any](maxsize) }

// SimpleQueue is NewSimpleQueue[any].
func (c *Context) SimpleQueue() (*SimpleQueue[any], error) { return NewSimpleQueue[any]() }

// JoinableQueue is NewJoinableQueue[any].
func (c *Context) JoinableQueue(maxsize int) (*JoinableQueue[any], error) {
	return NewJoinableQueue[any](maxsize)
}

// Pipe is the package's Pipe.
func (c *Context) Pipe(duplex bool) (*Connection, *Connection, error) { return Pipe(duplex) }
