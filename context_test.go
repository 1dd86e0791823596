package multiprocessing_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

func TestDefaultContextLikePython(t *testing.T) {
	out, err := helper(t, "start-methods")
	require.NoError(t, err, out)
	assert.Equal(t, startMethodsSaid, out)
}

func TestGetContext(t *testing.T) {
	assert.Equal(t, allMethods, mp.GetAllStartMethods())
	for _, m := range allMethods {
		ctx, err := mp.GetContext(m)
		require.NoError(t, err)
		again, err := mp.GetContext(m)
		require.NoError(t, err)
		assert.Same(t, ctx, again, "one context per method")
		assert.Equal(t, m, ctx.StartMethod())
	}
	def, err := mp.GetContext("")
	require.NoError(t, err)
	assert.Equal(t, mp.GetStartMethod(false), def.StartMethod())
	assert.Same(t, mp.CurrentProcess(), def.CurrentProcess())
	assert.Nil(t, def.ParentProcess())
	assert.Equal(t, mp.CPUCount(), def.CPUCount())
	assert.Empty(t, def.ActiveChildren())

	_, err = mp.GetContext("threads")
	assert.ErrorIs(t, err, mp.ErrUnknownStartMethod)
	assert.EqualError(t, err, "multiprocessing: unknown start method: cannot find context for 'threads'")
}
