package multiprocessing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestItemThatDoesNotDecodeIntoT(t *testing.T) {
	q, err := NewQueue[int](0)
	require.NoError(t, err)
	defer q.Close()
	end, err := q.current()
	require.NoError(t, err)
	require.NoError(t, end.Put([]byte("not gob"), -1))
	_, err = q.Get()
	assert.ErrorContains(t, err, "an item that is not a int")
	require.NoError(t, q.Put(2))
	v, err := q.Get()
	require.NoError(t, err)
	assert.Equal(t, 2, v, "the queue goes on after a bad item")
}
