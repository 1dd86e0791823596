package multiprocessing

import (
	"fmt"
	"os"
	"reflect"
)

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
