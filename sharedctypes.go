package multiprocessing

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/mpgo/multiprocessing/internal/shmsync"
)

// A Value's or an Array's segment: its RLock, then from dataOffset its
// data, aligned for any type.
const dataOffset = 64

// plain reports why values of typ cannot live in shared memory: a type
// that holds pointers (a string, slice, map, chan, func, interface or
// pointer) would point into one process's memory only.
func plain(typ reflect.Type) error {
	switch typ.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil
	case reflect.Array:
		return plain(typ.Elem())
	case reflect.Struct:
		for i := range typ.NumField() {
			if err := plain(typ.Field(i).Type); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s holds a %s", typ, typ.Kind())
}

// newData makes the segment of a Value or Array of n elements of T, and
// its RLock.
func newData[T any](kind string, n int) (shared, *RLock, error) {
	typ := reflect.TypeFor[T]()
	if err := plain(typ); err != nil {
		return shared{}, nil, fmt.Errorf("%w: a %s of %s: %v, which cannot be shared between processes", ErrBadArgs, kind, typ, err)
	}
	size := int(typ.Size())
	if n < 0 || size > 0 && int64(n) > (1<<40)/int64(size) {
		return shared{}, nil, fmt.Errorf("%w: an Array of %d elements of %s", ErrBadArgs, n, typ)
	}
	s, err := newShared(kind, dataOffset+n*size)
	if err != nil {
		return shared{}, nil, err
	}
	return s, dataLock(s), nil
}

// openData maps, in a child, the segment of a Value or Array of n
// elements of T.
func openData[T any](kind string, fds []int, n int) (shared, *RLock, error) {
	s, err := openShared(kind, fds)
	if err != nil {
		return shared{}, nil, err
	}
	if size := int(reflect.TypeFor[T]().Size()); n < 0 || dataOffset+n*size > len(s.seg.Bytes()) {
		s.Close()
		return shared{}, nil, fmt.Errorf("a %s of %d elements of %d bytes in %d bytes", kind, n, size, len(s.seg.Bytes()))
	}
	return s, dataLock(s), nil
}

func dataLock(s shared) *RLock {
	return &RLock{lockBase{shared: s, mu: shmsync.NewMutex(s.seg, 0), recursive: true}}
}

// Value is Python's multiprocessing.Value for a Go type: one T in shared
// memory, with an RLock. Pass it to a target as an argument or a Runner
// field and the child sees and changes the same T.
//
// Load, Store and Update hold the lock, which keeps goroutines of one
// process apart too. Python's trap, v.value += 1 from several processes,
// loses increments; Update(func(n *int64) { *n++ }) loses none.
//
// If a process dies in the middle of an Update, the T keeps what that
// Update had written until then (nothing is rolled back), and the next
// Update (or Acquire of its Lock) returns ErrOwnerDied: the caller decides
// whether the T is consistent. A Load or Store that comes first takes the
// lock over without a word.
type Value[T any] struct {
	shared
	lock  *RLock
	local sync.Mutex // keeps this process's Loads, Stores and Updates apart, which the RLock lets in together
	ptr   *T
}

// NewValue makes a Value holding v. T must hold no pointers (no string,
// slice, map, chan, func, interface or pointer): ErrBadArgs names T
// otherwise.
func NewValue[T any](v T) (*Value[T], error) {
	s, lock, err := newData[T]("Value", 1)
	if err != nil {
		return nil, err
	}
	val := &Value[T]{shared: s, lock: lock, ptr: dataAt[T](s)}
	*val.ptr = v
	return val, nil
}

func dataAt[T any](s shared) *T { return (*T)(unsafe.Pointer(&s.seg.Bytes()[dataOffset])) }

func (v *Value[T]) handleFiles() ([]*os.File, []byte, error) {
	files, err := v.files("Value")
	return files, nil, err
}

func (v *Value[T]) restoreHandle(fds []int, _ []byte) error {
	s, lock, err := openData[T]("Value", fds, 1)
	if err != nil {
		return err
	}
	v.shared, v.lock, v.ptr = s, lock, dataAt[T](s)
	return nil
}

// Load returns the T, read under the lock.
func (v *Value[T]) Load() T {
	defer runtime.KeepAlive(v)
	v.local.Lock()
	defer v.local.Unlock()
	v.lock.acquire(time.Time{}, nil)
	x := *v.ptr
	v.lock.Release()
	return x
}

// Store sets the T, under the lock.
func (v *Value[T]) Store(x T) {
	defer runtime.KeepAlive(v)
	v.local.Lock()
	defer v.local.Unlock()
	v.lock.acquire(time.Time{}, nil)
	*v.ptr = x
	v.lock.Release()
}

// Update calls f with the T under the lock, and returns nil, or
// ErrOwnerDied after f when the lock's last holder died holding it (what
// the T then holds is said in Value's doc). f must not keep the pointer.
func (v *Value[T]) Update(f func(*T)) error {
	defer runtime.KeepAlive(v)
	v.local.Lock()
	defer v.local.Unlock()
	_, err := v.lock.acquire(time.Time{}, nil)
	defer v.lock.Release()
	f(v.ptr)
	return err
}

// Ptr is the shared T itself, without the lock: for sync/atomic (on an
// int64 field, say), or for code that holds Lock. The memory stays mapped
// in this process until it exits, whatever happens to the Value.
func (v *Value[T]) Ptr() *T {
	v.seg.Pin()
	return v.ptr
}

// Lock is the Value's RLock (Python's get_lock), shared with every process
// that has the Value. Closing it closes the Value.
func (v *Value[T]) Lock() *RLock { return v.lock }

// Array is Python's multiprocessing.Array for a Go type: n elements of T in
// shared memory, with an RLock; otherwise as Value.
type Array[T any] struct {
	shared
	lock  *RLock
	local sync.Mutex // as Value's
	data  []T
}

// NewArray makes an Array of n zeroed elements (n >= 0). T must hold no
// pointers, as for NewValue.
func NewArray[T any](n int) (*Array[T], error) {
	s, lock, err := newData[T]("Array", n)
	if err != nil {
		return nil, err
	}
	return &Array[T]{shared: s, lock: lock, data: sliceAt[T](s, n)}, nil
}

func sliceAt[T any](s shared, n int) []T { return unsafe.Slice(dataAt[T](s), n) }

func (a *Array[T]) handleFiles() ([]*os.File, []byte, error) {
	files, err := a.files("Array")
	return files, strconv.AppendInt(nil, int64(len(a.data)), 10), err
}

func (a *Array[T]) restoreHandle(fds []int, state []byte) error {
	n, err := strconv.Atoi(string(state))
	if err != nil {
		return fmt.Errorf("an Array sent as %q", state)
	}
	s, lock, err := openData[T]("Array", fds, n)
	if err != nil {
		return err
	}
	a.shared, a.lock, a.data = s, lock, sliceAt[T](s, n)
	return nil
}

// Len is the number of elements.
func (a *Array[T]) Len() int { return len(a.data) }

// Load returns element i, read under the lock; it panics when i is out of
// range, as indexing a slice does.
func (a *Array[T]) Load(i int) T {
	defer runtime.KeepAlive(a)
	a.local.Lock()
	defer a.local.Unlock()
	a.lock.acquire(time.Time{}, nil)
	defer a.lock.Release()
	return a.data[i]
}

// Store sets element i under the lock; it panics when i is out of range.
func (a *Array[T]) Store(i int, x T) {
	defer runtime.KeepAlive(a)
	a.local.Lock()
	defer a.local.Unlock()
	a.lock.acquire(time.Time{}, nil)
	defer a.lock.Release()
	a.data[i] = x
}

// Update calls f with the elements under the lock, as Value's Update.
func (a *Array[T]) Update(f func([]T)) error {
	defer runtime.KeepAlive(a)
	a.local.Lock()
	defer a.local.Unlock()
	_, err := a.lock.acquire(time.Time{}, nil)
	defer a.lock.Release()
	f(a.data)
	return err
}

// Slice is the shared elements themselves, without the lock. The memory
// stays mapped in this process until it exits.
func (a *Array[T]) Slice() []T {
	a.seg.Pin()
	return a.data
}

// Lock is the Array's RLock, as Value's Lock.
func (a *Array[T]) Lock() *RLock { return a.lock }
