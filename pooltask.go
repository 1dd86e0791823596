package multiprocessing

import (
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"

	"github.com/mpgo/multiprocessing/internal/pool"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// How a pool's tasks are encoded in the parent and run in a worker. A task
// is a chunk of calls of one target; its arguments travel as queue items
// (wire.ItemEncoder), each of the type the target's parameter has, and its
// results as one item of a slice of the target's result type.

// poolTarget finds the registration of a Pool call's target, which must
// be a function.
func poolTarget(v any) (*target, error) {
	t, err := lookupTarget(v)
	if err != nil {
		return nil, err
	}
	if t.runner != nil {
		return nil, fmt.Errorf("%w: target %s is a Runner; a pool runs functions", ErrBadArgs, t.name)
	}
	return t, nil
}

// itemParam checks that t can be called with one item of type a, as Map
// and Imap call it, and returns the parameter's type.
func (t *target) itemParam(a reflect.Type) (reflect.Type, error) {
	ft := t.fn.Type()
	if n := ft.NumIn(); n != 1 && !(ft.IsVariadic() && n <= 2) {
		return nil, fmt.Errorf("%w: target %s (%s) takes %d arguments; Map and Imap call it with one item", ErrBadArgs, t.name, ft, n)
	}
	p := t.param(0)
	if !a.AssignableTo(p) {
		return nil, fmt.Errorf("%w: target %s: parameter 1: have items of %s, want %s", ErrBadArgs, t.name, a, p)
	}
	if isHandle(p) {
		return nil, fmt.Errorf("%w: target %s: parameter 1: a %s cannot be sent to a pool's task; pass it to the pool's Initializer", ErrBadArgs, t.name, p)
	}
	return p, nil
}

// checkResult checks that t's result can be handed back as an r.
func (t *target) checkResult(r reflect.Type) error {
	if t.result != nil && !t.result.AssignableTo(r) {
		return fmt.Errorf("%w: target %s: result: have %s, want %s", ErrBadArgs, t.name, t.result, r)
	}
	return nil
}

// encodeCall encodes the arguments of one call of t, checked as Start
// checks a Process's.
func (t *target) encodeCall(enc *wire.ItemEncoder, args []any) ([][]byte, error) {
	vals, types, err := t.values(nil, args)
	if err != nil {
		return nil, err
	}
	call := make([][]byte, len(vals))
	for i, v := range vals {
		if isHandle(types[i]) {
			return nil, fmt.Errorf("%w: target %s: %s: a %s cannot be sent to a pool's task; pass it to the pool's Initializer", ErrBadArgs, t.name, t.describe(i), types[i])
		}
		if isNil(v) {
			continue
		}
		p := reflect.New(types[i])
		p.Elem().Set(v)
		if call[i], err = enc.Encode(p.Interface()); err != nil {
			return nil, fmt.Errorf("%w: target %s: %s cannot be sent to a worker: %v", ErrBadArgs, t.name, t.describe(i), err)
		}
	}
	return call, nil
}

// encodeItems encodes items, of a type assignable to the parameter p, as
// one item of a []p.
func encodeItems[A any](enc *wire.ItemEncoder, t *target, p reflect.Type, items []A) ([]byte, error) {
	var v any = &items
	if reflect.TypeFor[A]() != p {
		s := reflect.MakeSlice(reflect.SliceOf(p), len(items), len(items))
		for i := range items {
			s.Index(i).Set(reflect.ValueOf(&items[i]).Elem())
		}
		ptr := reflect.New(s.Type())
		ptr.Elem().Set(s)
		v = ptr.Interface()
	}
	b, err := enc.Encode(v)
	if err != nil {
		return nil, fmt.Errorf("%w: target %s: the items cannot be sent to a worker: %v", ErrBadArgs, t.name, err)
	}
	return b, nil
}

// decodeValues decodes the results of a task of t into rs, which has room
// for them; the zero R where t has no result.
func decodeValues[R any](dec *wire.ItemDecoder, t *target, values []byte, rs []R) error {
	if t.result == nil || len(values) == 0 {
		return nil
	}
	if t.result == reflect.TypeFor[R]() {
		got := rs[:0:len(rs)] // decoded in place, unless there are too many
		if err := dec.Decode(values, &got); err != nil {
			return err
		}
		if len(got) > len(rs) {
			return fmt.Errorf("%d results for %d calls", len(got), len(rs))
		}
		if len(got) > 0 && &got[0] != &rs[0] {
			copy(rs, got)
		}
		return nil
	}
	got := reflect.New(reflect.SliceOf(t.result))
	if err := dec.Decode(values, got.Interface()); err != nil {
		return err
	}
	s := got.Elem()
	if s.Len() > len(rs) {
		return fmt.Errorf("%d results for %d calls", s.Len(), len(rs))
	}
	for i := range s.Len() {
		reflect.ValueOf(&rs[i]).Elem().Set(s.Index(i))
	}
	return nil
}

// servePool is a pool worker's life once its initializer has returned.
func servePool(boot *wire.Bootstrap) (code int, message string) {
	if len(boot.Files) < boot.Worker {
		return 1, "multiprocessing: a pool worker without its link to the pool"
	}
	link, err := pool.WorkerLink(boot.Files[len(boot.Files)-boot.Worker:])
	if err != nil {
		return 1, "multiprocessing: " + err.Error()
	}
	w := &taskRunner{targets: map[string]*target{}}
	if err := pool.Serve(link, w.run); err != nil {
		return 1, err.Error()
	}
	return 0, ""
}

// taskRunner runs the tasks a worker gets.
type taskRunner struct {
	targets map[string]*target
	dec     wire.ItemDecoder
	enc     wire.ItemEncoder
}

func (w *taskRunner) run(task *wire.PoolTask) *wire.PoolResult {
	t := w.targets[task.Target]
	if t == nil {
		if t = lookupName(task.Target); t == nil || t.runner != nil {
			return failAll(fmt.Sprintf("%v: %s is not a function registered in the worker; register targets in init functions, not in main", ErrNotRegistered, task.Target))
		}
		w.targets[task.Target] = t
	}
	c := &chunkRun{t: t, stop: task.Stop}
	if task.Items != nil {
		items := reflect.New(reflect.SliceOf(t.param(0)))
		if err := w.dec.Decode(task.Items, items.Interface()); err != nil {
			return failAll(fmt.Sprintf("multiprocessing: decoding the items for %s: %v", t.name, err))
		}
		c.runItems(items.Elem())
	} else {
		c.runCalls(&w.dec, task.Calls)
	}
	res := &wire.PoolResult{Ran: c.ran, Failures: c.failures}
	if c.out.IsValid() {
		out := reflect.New(c.out.Type())
		out.Elem().Set(c.out.Slice(0, c.ran))
		values, err := w.enc.Encode(out.Interface())
		if err != nil {
			return failAll(fmt.Sprintf("multiprocessing: the results of %s cannot be sent back: %v", t.name, err))
		}
		res.Values = values
	}
	return res
}

func failAll(message string) *wire.PoolResult {
	return &wire.PoolResult{Ran: 1, Failures: []wire.PoolFailure{{Call: 0, Message: message}}}
}

// chunkRun runs the calls of one task.
type chunkRun struct {
	t        *target
	stop     bool
	out      reflect.Value // []R, R the target's result; invalid when it has none
	ran      int
	failures []wire.PoolFailure
}

func (c *chunkRun) results(n int) {
	if c.t.result != nil {
		c.out = reflect.MakeSlice(reflect.SliceOf(c.t.result), n, n)
	}
}

// fail records the failure of call i and tells whether to go on.
func (c *chunkRun) fail(i int, message string) bool {
	c.failures = append(c.failures, wire.PoolFailure{Call: i, Message: message})
	return !c.stop
}

// runItems calls the target with each element of items, a []P: without
// reflection when the target's type has a typed runner.
func (c *chunkRun) runItems(items reflect.Value) {
	n := items.Len()
	c.results(n)
	if fast := typedRunner(c.t.fn); fast != nil && c.out.IsValid() {
		in, out := items.Interface(), c.out.Interface()
		for c.ran < n {
			i, panicked, err := runGuarded(func(i *int) error { return fast(in, out, i) }, c.ran)
			c.ran = i
			if err == nil && panicked == "" {
				return
			}
			c.ran++
			if !c.fail(i, failureMessage(err, panicked)) {
				return
			}
		}
		return
	}
	for c.ran < n {
		i := c.ran
		c.ran++
		if !c.call(i, []reflect.Value{items.Index(i)}) {
			return
		}
	}
}

// runCalls decodes each call's arguments and makes the call.
func (c *chunkRun) runCalls(dec *wire.ItemDecoder, calls [][][]byte) {
	c.results(len(calls))
	for i, args := range calls {
		c.ran++
		in, err := c.decodeArgs(dec, args)
		if err != nil {
			if !c.fail(i, err.Error()) {
				return
			}
			continue
		}
		if !c.call(i, in) {
			return
		}
	}
}

func (c *chunkRun) decodeArgs(dec *wire.ItemDecoder, args [][]byte) ([]reflect.Value, error) {
	ft := c.t.fn.Type()
	if ft.IsVariadic() && len(args) < ft.NumIn()-1 || !ft.IsVariadic() && len(args) != ft.NumIn() {
		return nil, fmt.Errorf("multiprocessing: target %s: %d arguments sent to %s", c.t.name, len(args), ft)
	}
	in := make([]reflect.Value, len(args))
	for i, a := range args {
		p := reflect.New(c.t.param(i))
		if a != nil {
			if err := dec.Decode(a, p.Interface()); err != nil {
				return nil, fmt.Errorf("multiprocessing: target %s: decoding %s: %v", c.t.name, c.t.describe(i), err)
			}
		}
		in[i] = p.Elem()
	}
	return in, nil
}

// call makes call i through reflection and tells whether to go on.
func (c *chunkRun) call(i int, in []reflect.Value) bool {
	var result reflect.Value
	_, panicked, err := runGuarded(func(*int) error {
		var err error
		result, err = c.t.invoke(in)
		return err
	}, i)
	if result.IsValid() && c.out.IsValid() {
		c.out.Index(i).Set(result)
	}
	if err != nil || panicked != "" {
		return c.fail(i, failureMessage(err, panicked))
	}
	return true
}

// runGuarded runs f from call i, which f advances, and returns where it
// stopped, its error, or the panic that stopped it, with the stack of the
// target's frames.
func runGuarded(f func(i *int) error, i int) (at int, panicked string, err error) {
	defer func() {
		if v := recover(); v != nil {
			at, panicked = i, fmt.Sprintf("panic: %v\n\n%s", v, targetStack(debug.Stack()))
		}
	}()
	err = f(&i)
	return i, "", err
}

func failureMessage(err error, panicked string) string {
	if panicked != "" {
		return panicked
	}
	return err.Error()
}

// A typed runner calls a function of one known type on in[*i], *i from
// where it is to the end, storing each result in out[*i], and returns at
// the first error. in and out are a []P and a []R.
type itemsRunner func(in, out any, i *int) error

// typedRunners holds a runner for each function type of the plain kinds
// below, func(P) R and func(P) (R, error): a call through reflection costs
// a few hundred nanoseconds, more than most items' work, where a typed
// call costs a few. Made on first use, in workers only.
var typedRunners = sync.OnceValue(func() map[reflect.Type]func(fn any) itemsRunner {
	m := map[reflect.Type]func(fn any) itemsRunner{}
	addRunners[bool](m)
	addRunners[int](m)
	addRunners[int64](m)
	addRunners[uint64](m)
	addRunners[float64](m)
	addRunners[string](m)
	addRunners[[]byte](m)
	return m
})

func addRunners[P any](m map[reflect.Type]func(fn any) itemsRunner) {
	addRunner[P, bool](m)
	addRunner[P, int](m)
	addRunner[P, int64](m)
	addRunner[P, uint64](m)
	addRunner[P, float64](m)
	addRunner[P, string](m)
	addRunner[P, []byte](m)
}

func addRunner[P, R any](m map[reflect.Type]func(fn any) itemsRunner) {
	m[reflect.TypeFor[func(P) R]()] = func(fn any) itemsRunner {
		f := fn.(func(P) R)
		return func(in, out any, i *int) error {
			xs, ys := in.([]P), out.([]R)
			for ; *i < len(xs); *i++ {
				ys[*i] = f(xs[*i])
			}
			return nil
		}
	}
	m[reflect.TypeFor[func(P) (R, error)]()] = func(fn any) itemsRunner {
		f := fn.(func(P) (R, error))
		return func(in, out any, i *int) error {
			xs, ys := in.([]P), out.([]R)
			for ; *i < len(xs); *i++ {
				y, err := f(xs[*i])
				ys[*i] = y
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
}

func typedRunner(fn reflect.Value) itemsRunner {
	if build := typedRunners()[fn.Type()]; build != nil {
		return build(fn.Interface())
	}
	return nil
}
