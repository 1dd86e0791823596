package multiprocessing

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
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
	result reflect.Type  // a function target's result R, nil when it has none
	erring bool          // a function target returns an error, last
	runner reflect.Type  // a Runner target: the registered type, T or *T
	base   reflect.Type  // a Runner target: its struct type, T
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
// (any gob-encodable parameters, or *os.File; returns nothing, error, a
// result R, or (R, error)) or a value whose type implements Runner. A
// result is what a Pool hands back; a Process drops it. Its name is derived: the function's
// full name (runtime.FuncForPC), or the type's package path and name.
//
// Call Register from an init function, so that the parent and every child
// register the same targets before Init runs. Like gob.Register, it panics
// on misuse, which is a programming error: v is nil, not a function nor a
// Runner, a function literal or method value (their names are not stable:
// name one with RegisterName), a function whose results are not (),
// (error), (R) or (R, error), or a name already taken.
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
	registry.byType[t.base] = t
	registry.byType[reflect.PointerTo(t.base)] = t
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
		t := &target{name: name, fn: rv}
		ft := rv.Type()
		switch {
		case ft.NumOut() == 1 && ft.Out(0) == errorType:
			t.erring = true
		case ft.NumOut() == 1:
			t.result = ft.Out(0)
		case ft.NumOut() == 2 && ft.Out(1) == errorType:
			t.result, t.erring = ft.Out(0), true
		case ft.NumOut() != 0:
			return nil, fmt.Errorf("a target function returns nothing, error, R or (R, error), not %s", ft)
		}
		return t, nil
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
	t := &target{name: name, runner: rv.Type(), base: base}
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
