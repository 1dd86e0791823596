package multiprocessing

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"

	"github.com/mpgo/multiprocessing/internal/wire"
)

// Runner is the analogue of subclassing Python's Process and overriding
// run(): a registered value whose type implements Runner can be a target.
//
// The exported fields of the Runner travel to the child (gob-encoded, or as
// descriptors for *os.File); unexported fields do not. A field of type
// *Process, usually an embedded one, does not travel: in the child it is
// set to CurrentProcess(), so that Run can read its own Name and Pid.
type Runner interface{ Run() error }

// A target is what Register recorded: how to find a function or a Runner
// type from the value passed to NewProcess, and what it takes.
type target struct {
	name   string
	fn     reflect.Value // a function target
	runner reflect.Type  // a Runner target: the registered type, T or *T
	fields []int         // a Runner target: the fields that travel
}

var registry = struct {
	sync.RWMutex
	byName map[string]*target
	byPC   map[uintptr]*target
	byType map[reflect.Type]*target
}{
	byName: map[string]*target{},
	byPC:   map[uintptr]*target{},
	byType: map[reflect.Type]*target{},
}

var (
	errorType   = reflect.TypeFor[error]()
	fileType    = reflect.TypeFor[*os.File]()
	processType = reflect.TypeFor[*Process]()
)

// anonymous reports whether name is one the Go compiler gives to a function
// literal (pkg.F.func1, pkg.F.func1.2) or a method value (pkg.T.M-fm):
// neither is stable, and both can carry state a child cannot see. (A
// regular expression would cost every program its compilation at start.)
func anonymous(name string) bool {
	if strings.HasSuffix(name, "-fm") {
		return true
	}
	for {
		dot := strings.LastIndexByte(name, '.')
		if dot < 0 {
			return false
		}
		last := name[dot+1:]
		if n, ok := strings.CutPrefix(last, "func"); ok && digits(n) {
			return true
		}
		if !digits(last) {
			return false
		}
		name = name[:dot]
	}
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Register records v as a target that children can run. v is a function
// (any gob-encodable parameters, or *os.File; returns nothing or error) or
// a value whose type implements Runner. Its name is derived: the function's
// full name (runtime.FuncForPC), or the type's package path and name.
//
// Call Register from an init function, so that the parent and every child
// register the same targets before Init runs. Like gob.Register, it panics
// on misuse, which is a programming error: v is nil, not a function nor a
// Runner, a function literal or method value (their names are not stable:
// name one with RegisterName), a function whose results are not () or
// (error), or a name already taken.
func Register(v any) {
	if fn := reflect.ValueOf(v); fn.Kind() == reflect.Func && !fn.IsNil() {
		name := runtime.FuncForPC(fn.Pointer()).Name()
		if anonymous(name) {
			panic(fmt.Sprintf("multiprocessing: Register(%s): a function literal or method value has no stable name; use a named function, or RegisterName", name))
		}
		RegisterName(name, v)
		return
	}
	RegisterName(runnerName(reflect.TypeOf(v)), v)
}

// RegisterName is Register with an explicit name, which must be unique. A
// function literal registered this way must not capture variables: the
// child runs its own copy of the function, with its own variables.
func RegisterName(name string, v any) {
	t, err := newTarget(name, v)
	if err != nil {
		panic("multiprocessing: RegisterName(" + fmt.Sprintf("%q", name) + "): " + err.Error())
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.byName[name]; dup {
		panic(fmt.Sprintf("multiprocessing: RegisterName(%q): name registered twice", name))
	}
	registry.byName[name] = t
	if t.fn.IsValid() {
		registry.byPC[t.fn.Pointer()] = t
		return
	}
	base := t.runner
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	registry.byType[base] = t
	registry.byType[reflect.PointerTo(base)] = t
}

func runnerName(t reflect.Type) string {
	if t == nil {
		return "<nil>"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath() + "." + t.Name()
}

func newTarget(name string, v any) (*target, error) {
	if name == "" {
		return nil, errors.New("empty name")
	}
	rv := reflect.ValueOf(v)
	switch {
	case v == nil:
		return nil, errors.New("nil target")
	case rv.Kind() == reflect.Func:
		if rv.IsNil() {
			return nil, errors.New("nil function")
		}
		ft := rv.Type()
		if ft.NumOut() > 1 || ft.NumOut() == 1 && ft.Out(0) != errorType {
			return nil, fmt.Errorf("a target function returns nothing or error, not %s", ft)
		}
		return &target{name: name, fn: rv}, nil
	}
	if _, ok := v.(Runner); !ok {
		return nil, fmt.Errorf("%T is neither a function nor a Runner", v)
	}
	base := rv.Type()
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if base.Kind() != reflect.Struct {
		return nil, fmt.Errorf("a Runner must be a struct or a pointer to one, not %s", rv.Type())
	}
	t := &target{name: name, runner: rv.Type()}
	for i := range base.NumField() {
		f := base.Field(i)
		if f.IsExported() && f.Type != processType {
			t.fields = append(t.fields, i)
		}
	}
	return t, nil
}

// lookupTarget finds the registration of a value passed to NewProcess.
func lookupTarget(v any) (*target, error) {
	rv := reflect.ValueOf(v)
	registry.RLock()
	defer registry.RUnlock()
	switch {
	case v == nil:
		return nil, fmt.Errorf("%w: the target is nil", ErrNotRegistered)
	case rv.Kind() == reflect.Func:
		if rv.IsNil() {
			return nil, fmt.Errorf("%w: the target is a nil function", ErrNotRegistered)
		}
		if t := registry.byPC[rv.Pointer()]; t != nil {
			return t, nil
		}
		name := runtime.FuncForPC(rv.Pointer()).Name()
		if anonymous(name) {
			return nil, fmt.Errorf("%w: %s is a function literal or method value; register a named function", ErrNotRegistered, name)
		}
		return nil, fmt.Errorf("%w: %s; call multiprocessing.Register(%s) in an init function", ErrNotRegistered, name, name)
	}
	if t := registry.byType[rv.Type()]; t != nil {
		return t, nil
	}
	if _, ok := v.(Runner); ok {
		return nil, fmt.Errorf("%w: Runner type %s; call multiprocessing.Register(&%s{}) in an init function", ErrNotRegistered, rv.Type(), reflect.Indirect(reflect.New(rv.Type())).Type())
	}
	return nil, fmt.Errorf("%w: %T is neither a function nor a Runner", ErrBadArgs, v)
}

func lookupName(name string) *target {
	registry.RLock()
	defer registry.RUnlock()
	return registry.byName[name]
}

// param is the type the i-th of n arguments must have.
func (t *target) param(i int) reflect.Type {
	ft := t.fn.Type()
	if ft.IsVariadic() && i >= ft.NumIn()-1 {
		return ft.In(ft.NumIn() - 1).Elem()
	}
	return ft.In(i)
}

// values lists what travels to the child, with the types they must have:
// the arguments of a function, the fields of a Runner.
func (t *target) values(v any, args []any) ([]reflect.Value, []reflect.Type, error) {
	if t.runner != nil {
		if len(args) > 0 {
			return nil, nil, fmt.Errorf("%w: target %s is a Runner and takes no arguments (%d given); its exported fields travel instead", ErrBadArgs, t.name, len(args))
		}
		rv := reflect.Indirect(reflect.ValueOf(v))
		vals := make([]reflect.Value, len(t.fields))
		types := make([]reflect.Type, len(t.fields))
		for k, i := range t.fields {
			vals[k], types[k] = rv.Field(i), rv.Type().Field(i).Type
		}
		return vals, types, nil
	}
	ft := t.fn.Type()
	if n := ft.NumIn(); ft.IsVariadic() && len(args) < n-1 || !ft.IsVariadic() && len(args) != n {
		want := fmt.Sprint(n)
		if ft.IsVariadic() {
			want = fmt.Sprintf("at least %d", n-1)
		}
		return nil, nil, fmt.Errorf("%w: target %s (%s) takes %s arguments, %d given", ErrBadArgs, t.name, ft, want, len(args))
	}
	vals := make([]reflect.Value, len(args))
	types := make([]reflect.Type, len(args))
	for i, a := range args {
		want := t.param(i)
		types[i] = want
		if a == nil {
			switch want.Kind() {
			case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
				vals[i] = reflect.Zero(want)
				continue
			}
			return nil, nil, fmt.Errorf("%w: target %s: argument %d: have nil, want %s", ErrBadArgs, t.name, i+1, want)
		}
		have := reflect.TypeOf(a)
		if !have.AssignableTo(want) {
			return nil, nil, fmt.Errorf("%w: target %s: argument %d: have %s, want %s", ErrBadArgs, t.name, i+1, have, want)
		}
		vals[i] = reflect.ValueOf(a)
	}
	return vals, types, nil
}

// encodedArgs is what the parent puts into the bootstrap message for the
// values of a target, and the descriptors that must reach the child.
type encodedArgs struct {
	gob     []byte
	kinds   []wire.ArgKind
	handles []wire.Handle
	files   []*os.File
}

// encodeArgs encodes vals, each as its type in types, in one gob stream, so
// that type descriptions are sent once.
func (t *target) encodeArgs(vals []reflect.Value, types []reflect.Type) (*encodedArgs, error) {
	var buf bytes.Buffer
	var enc *gob.Encoder // made on first use: arguments that are all handles need none
	out := &encodedArgs{kinds: make([]wire.ArgKind, len(vals))}
	for i, v := range vals {
		switch {
		case isNil(v):
			out.kinds[i] = wire.ArgNil
			continue
		case isHandle(types[i]):
			files, state, err := handleOf(v)
			if err != nil {
				return nil, fmt.Errorf("%w: target %s: %s cannot be sent to a child: %v", ErrBadArgs, t.name, t.describe(i), err)
			}
			out.kinds[i] = wire.ArgHandle
			out.files = append(out.files, files...)
			out.handles = append(out.handles, wire.Handle{Files: len(files), State: state})
			continue
		}
		// Through a pointer, so that gob sends a value of interface type
		// with its concrete type's name.
		p := reflect.New(v.Type())
		if types[i].Kind() == reflect.Interface {
			p = reflect.New(types[i])
		}
		p.Elem().Set(v)
		if enc == nil {
			enc = gob.NewEncoder(&buf)
		}
		if err := enc.EncodeValue(p); err != nil {
			return nil, fmt.Errorf("%w: target %s: %s cannot be sent to a child: %v", ErrBadArgs, t.name, t.describe(i), err)
		}
	}
	out.gob = buf.Bytes()
	return out, nil
}

// A handle is a library value that holds descriptors (a queue, a
// connection): they travel to the child beside the bootstrap message, and
// the child rebuilds the value around its copies.
type handle interface {
	// handleFiles returns the descriptors to pass, which the caller
	// duplicates before Start returns, and the state that rebuilds it.
	handleFiles() ([]*os.File, []byte, error)
	// restoreHandle rebuilds a new, zero value in the child, around the
	// descriptors it owns from now on.
	restoreHandle(fds []int, state []byte) error
}

var handleType = reflect.TypeFor[handle]()

// isHandle reports whether values of typ travel as descriptors: *os.File,
// and pointers to the library's handle types.
func isHandle(typ reflect.Type) bool {
	return typ == fileType || typ.Kind() == reflect.Pointer && typ.Implements(handleType)
}

func handleOf(v reflect.Value) ([]*os.File, []byte, error) {
	if f, ok := v.Interface().(*os.File); ok {
		return []*os.File{f}, []byte(f.Name()), nil
	}
	return v.Interface().(handle).handleFiles()
}

func restoreHandle(typ reflect.Type, fds []int, state []byte) (reflect.Value, error) {
	if typ == fileType {
		if len(fds) != 1 {
			return reflect.Value{}, fmt.Errorf("%d descriptors for an *os.File", len(fds))
		}
		return reflect.ValueOf(os.NewFile(uintptr(fds[0]), string(state))), nil
	}
	v := reflect.New(typ.Elem())
	if err := v.Interface().(handle).restoreHandle(fds, state); err != nil {
		return reflect.Value{}, err
	}
	return v, nil
}

func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

func (t *target) describe(i int) string {
	if t.runner != nil {
		base := t.runner
		if base.Kind() == reflect.Pointer {
			base = base.Elem()
		}
		return "field " + base.Field(t.fields[i]).Name
	}
	return fmt.Sprintf("argument %d", i+1)
}

// call rebuilds the values of b in the child and runs the target with them.
func (t *target) call(b *wire.Bootstrap) (run func() error, err error) {
	var dec *gob.Decoder // made on first use: arguments that are all handles need none
	files, handles := b.Files, b.Handles
	decode := func(i int, typ reflect.Type) (reflect.Value, error) {
		switch b.ArgKinds[i] {
		case wire.ArgNil:
			return reflect.Zero(typ), nil
		case wire.ArgHandle:
			if len(handles) == 0 {
				return reflect.Value{}, errors.New("no handle left")
			}
			h := handles[0]
			handles = handles[1:]
			if !isHandle(typ) {
				return reflect.Value{}, fmt.Errorf("descriptors sent for %s", typ)
			}
			if h.Files < 0 || h.Files > len(files) {
				return reflect.Value{}, fmt.Errorf("%d descriptors announced, %d left", h.Files, len(files))
			}
			fds := files[:h.Files]
			files = files[h.Files:]
			return restoreHandle(typ, fds, h.State)
		}
		if dec == nil {
			dec = gob.NewDecoder(bytes.NewReader(b.Args))
		}
		p := reflect.New(typ)
		if err := dec.DecodeValue(p); err != nil {
			return reflect.Value{}, err
		}
		return p.Elem(), nil
	}
	n := len(b.ArgKinds)
	if t.runner != nil {
		if n != len(t.fields) {
			return nil, fmt.Errorf("target %s: %d fields sent, %d expected", t.name, n, len(t.fields))
		}
		base := t.runner
		if base.Kind() == reflect.Pointer {
			base = base.Elem()
		}
		rv := reflect.New(base).Elem()
		for k, i := range t.fields {
			v, err := decode(k, base.Field(i).Type)
			if err != nil {
				return nil, fmt.Errorf("target %s: %s: %w", t.name, t.describe(k), err)
			}
			rv.Field(i).Set(v)
		}
		for i := range base.NumField() {
			if base.Field(i).Type == processType && base.Field(i).IsExported() {
				rv.Field(i).Set(reflect.ValueOf(CurrentProcess()))
			}
		}
		if t.runner.Kind() == reflect.Pointer {
			rv = rv.Addr()
		}
		return rv.Interface().(Runner).Run, nil
	}
	ft := t.fn.Type()
	if ft.IsVariadic() && n < ft.NumIn()-1 || !ft.IsVariadic() && n != ft.NumIn() {
		return nil, fmt.Errorf("target %s: %d arguments sent to %s", t.name, n, ft)
	}
	in := make([]reflect.Value, n)
	for i := range in {
		if in[i], err = decode(i, t.param(i)); err != nil {
			return nil, fmt.Errorf("target %s: %s: %w", t.name, t.describe(i), err)
		}
	}
	return func() error { return callFunc(t.fn, in) }, nil
}

func callFunc(fn reflect.Value, in []reflect.Value) error {
	out := fn.Call(in)
	if len(out) == 1 && !out[0].IsNil() {
		return out[0].Interface().(error)
	}
	return nil
}
