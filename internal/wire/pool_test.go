package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPoolFramesRoundTrip(t *testing.T) {
	for _, task := range []*PoolTask{
		{Target: "pkg.f", Stop: true, Items: []byte{1, 2, 3}},
		{Target: "pkg.g", Calls: [][][]byte{{{1}, nil}, {}}},
	} {
		frame := AppendTask(nil, 42, EncodeTask(task))
		got, err := DecodeTask(frame[4:])
		require.NoError(t, err)
		task.Seq = 42
		if task.Calls != nil {
			task.Calls[0][1] = []byte{}
		}
		assert.Equal(t, task, got)
		last, ok := BufferedTasks(append(frame, AppendTask(nil, 43, EncodeTask(task))...))
		assert.True(t, ok)
		assert.Equal(t, uint64(43), last)
		_, ok = BufferedTasks(frame[:len(frame)-1])
		assert.False(t, ok, "a task cut short is not whole")
		_, err = DecodeTask(frame[4 : len(frame)-1])
		assert.Error(t, err)
	}
	r := &PoolResult{Seq: 7, Ran: 3, Values: []byte{9}, Failures: []PoolFailure{{Call: 2, Message: "boom"}}}
	got, err := DecodeResult(EncodeResult(r))
	require.NoError(t, err)
	assert.Equal(t, r, got)
	bad := EncodeResult(&PoolResult{Seq: 1, Ran: 1, Failures: []PoolFailure{{Call: 1, Message: "x"}}})
	_, err = DecodeResult(bad)
	assert.ErrorContains(t, err, "pool result: a failure of a call that did not run")
	upTo, ok := ParseTasksStarted(TasksStarted(5))
	assert.True(t, ok)
	assert.Equal(t, uint64(5), upTo)
	assert.True(t, IsReady(Ready()))
}
