package multiprocessing

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/mpgo/multiprocessing/internal/wire"
)

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

func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

func (t *target) describe(i int) string {
	if t.runner != nil {
		return "field " + t.base.Field(t.fields[i]).Name
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
		base := t.base
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
	return func() error {
		_, err := t.invoke(in)
		return err
	}, nil
}

// invoke calls a function target and returns its result (the zero
// reflect.Value when it has none) and its error.
func (t *target) invoke(in []reflect.Value) (reflect.Value, error) {
	out := t.fn.Call(in)
	var result reflect.Value
	if t.result != nil {
		result = out[0]
	}
	if t.erring {
		if err := out[len(out)-1]; !err.IsNil() {
			return result, err.Interface().(error)
		}
	}
	return result, nil
}
