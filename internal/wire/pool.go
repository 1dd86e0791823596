package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A pool and each of its workers exchange frames over a private stream
// socket. The pool sends tasks, each with a sequence number of its own;
// the worker says once that it is ready (its initializer returned), then
// answers every task, in the order they came, with a result that repeats
// the number. A task is a chunk of calls of one target.

// The first byte of each frame of a pool.
const (
	poolTask    = 'T'
	poolReady   = 'R'
	poolStarted = 'S'
	poolResult  = 'A'
)

// PoolTask is a chunk of calls of one target.
type PoolTask struct {
	Seq    uint64
	Target string
	// Stop asks the worker to run no more of the chunk's calls after one
	// fails.
	Stop bool
	// Items, when set, is one item (see ItemEncoder) of a slice of the
	// target's parameter type: one call for each element. Otherwise Calls
	// holds each call's arguments, an item each, nil for a nil argument.
	Items []byte
	Calls [][][]byte
}

// EncodeTask returns the part of t's frame that follows its sequence
// number, which AppendTask puts before it: a task is encoded once and may
// be sent to another worker with another number.
func EncodeTask(t *PoolTask) []byte {
	b := appendBytes(make([]byte, 0, 32+len(t.Target)+len(t.Items)), []byte(t.Target))
	flags := byte(0)
	if t.Stop {
		flags |= 1
	}
	if t.Items != nil {
		flags |= 2
		return appendBytes(append(b, flags), t.Items)
	}
	b = binary.AppendUvarint(append(b, flags), uint64(len(t.Calls)))
	for _, call := range t.Calls {
		b = binary.AppendUvarint(b, uint64(len(call)))
		for _, arg := range call {
			b = appendBytes(b, arg)
		}
	}
	return b
}

// AppendTask appends to dst the frame of a task numbered seq whose
// EncodeTask is body.
func AppendTask(dst []byte, seq uint64, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+8+len(body)))
	dst = binary.BigEndian.AppendUint64(append(dst, poolTask), seq)
	return append(dst, body...)
}

// Ready is the frame a worker sends once, when it is ready for tasks.
func Ready() []byte { return []byte{poolReady} }

// IsReady tells whether a frame a worker sent is Ready.
func IsReady(frame []byte) bool { return len(frame) == 1 && frame[0] == poolReady }

// TasksStarted is the frame a worker sends when it starts a task after it
// waited for one: it has read the tasks up to upTo and will run them one
// after another, answering each before it starts the next. So when it
// dies, the first task it has not answered was running if its number is
// at most upTo, and had not reached it otherwise.
func TasksStarted(upTo uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{poolStarted}, upTo)
}

// ParseTasksStarted returns the number of a TasksStarted frame; false for
// another frame.
func ParseTasksStarted(frame []byte) (upTo uint64, ok bool) {
	if len(frame) != 9 || frame[0] != poolStarted {
		return 0, false
	}
	return binary.BigEndian.Uint64(frame[1:]), true
}

// BufferedTasks returns the number of the last whole task among the
// frames (lengths included) that begin buf; false when there is none.
func BufferedTasks(buf []byte) (last uint64, ok bool) {
	for len(buf) >= 4+9 {
		n := int(binary.BigEndian.Uint32(buf))
		if n < 9 || n > len(buf)-4 || buf[4] != poolTask {
			break
		}
		last, ok = binary.BigEndian.Uint64(buf[5:13]), true
		buf = buf[4+n:]
	}
	return last, ok
}

// DecodeTask decodes a frame of AppendTask (without its length).
func DecodeTask(frame []byte) (*PoolTask, error) {
	if len(frame) < 9 || frame[0] != poolTask {
		return nil, errors.New("pool task: not a task frame")
	}
	t := &PoolTask{Seq: binary.BigEndian.Uint64(frame[1:9])}
	d := &decoder{b: frame[9:], of: "pool task"}
	t.Target = d.string("target")
	flags := byte(0)
	if len(d.b) == 0 {
		d.fail("truncated before the flags")
	} else {
		flags, d.b = d.b[0], d.b[1:]
	}
	t.Stop = flags&1 != 0
	if flags&2 != 0 {
		t.Items = d.bytes("items")
		if t.Items == nil {
			t.Items = []byte{}
		}
	} else if n := d.count("calls"); n > 0 {
		t.Calls = make([][][]byte, n)
		for i := range t.Calls {
			m := d.count("arguments")
			t.Calls[i] = make([][]byte, m)
			for j := range t.Calls[i] {
				t.Calls[i][j] = d.bytes("argument")
			}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) > 0 {
		return nil, fmt.Errorf("pool task: %d bytes after the end", len(d.b))
	}
	return t, nil
}

// PoolResult answers the task numbered Seq.
type PoolResult struct {
	Seq uint64
	// Ran is how many of the task's calls ran: all of them, or, when the
	// task asked to stop, up to and with the first that failed.
	Ran int
	// Values is an item of a slice of the target's result type, one
	// element for each call that ran (the zero value where a call
	// failed); empty when the target has no result.
	Values   []byte
	Failures []PoolFailure
}

// PoolFailure is a call of a task that failed: its place in the task, and
// its error, or its panic value and stack.
type PoolFailure struct {
	Call    int
	Message string
}

// EncodeResult returns r as a frame's payload.
func EncodeResult(r *PoolResult) []byte {
	b := binary.BigEndian.AppendUint64([]byte{poolResult}, r.Seq)
	b = binary.AppendUvarint(b, uint64(r.Ran))
	b = appendBytes(b, r.Values)
	b = binary.AppendUvarint(b, uint64(len(r.Failures)))
	for _, f := range r.Failures {
		b = binary.AppendUvarint(b, uint64(f.Call))
		b = appendBytes(b, []byte(f.Message))
	}
	return b
}

// DecodeResult decodes a payload of EncodeResult.
func DecodeResult(frame []byte) (*PoolResult, error) {
	if len(frame) < 9 || frame[0] != poolResult {
		return nil, errors.New("pool result: not a result frame")
	}
	r := &PoolResult{Seq: binary.BigEndian.Uint64(frame[1:9])}
	d := &decoder{b: frame[9:], of: "pool result"}
	r.Ran = d.length("calls run")
	r.Values = d.bytes("values")
	if n := d.count("failures"); n > 0 {
		r.Failures = make([]PoolFailure, n)
		for i := range r.Failures {
			r.Failures[i] = PoolFailure{Call: d.length("failed call"), Message: d.string("message")}
			if r.Failures[i].Call >= r.Ran && d.err == nil {
				d.fail("a failure of a call that did not run")
			}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) > 0 {
		return nil, fmt.Errorf("pool result: %d bytes after the end", len(d.b))
	}
	return r, nil
}

// length reads a count that the bytes left do not bound: at most MaxFrame.
func (d *decoder) length(what string) int {
	n := d.uvarint(what)
	if n > MaxFrame {
		d.fail(fmt.Sprintf("%s: %d", what, n))
		return 0
	}
	return int(n)
}
