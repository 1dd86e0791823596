package multiprocessing_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

func init() { mp.Register(answerInSharedMemory) }

// answerInSharedMemory opens the block name, checks that it starts with
// question, writes answer right after it and closes its handle: it never
// unlinks the name.
func answerInSharedMemory(name, question, answer string) error {
	m, err := mp.OpenSharedMemory(name)
	if err != nil {
		return err
	}
	if got := string(m.Buf()[:len(question)]); got != question {
		m.Close()
		return fmt.Errorf("the block starts with %q, want %q", got, question)
	}
	copy(m.Buf()[len(question):], answer)
	return m.Close()
}

// shmFile is the file of the block name on Linux, the one system that has
// them.
func shmFile(name string) string { return "/dev/shm/" + name }

// newSharedMemory creates a block, or skips the test where there are
// none. The block is closed and its name removed when the test ends.
func newSharedMemory(t *testing.T, name string, size int) *mp.SharedMemory {
	t.Helper()
	m, err := mp.CreateSharedMemory(name, size)
	if errors.Is(err, mp.ErrUnsupported) {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		m.Close()
		os.Remove(shmFile(m.Name()))
	})
	return m
}

// openSharedMemory opens a block; the test closes it when it ends.
func openSharedMemory(t *testing.T, name string) *mp.SharedMemory {
	t.Helper()
	m, err := mp.OpenSharedMemory(name)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// freeSharedMemoryName is a name that no block has, whose file the test
// removes when it ends. It skips the test where there are no blocks.
func freeSharedMemoryName(t *testing.T) string {
	t.Helper()
	name := "mpgo_test_" + rand.Text()
	if _, err := mp.OpenSharedMemory(name); errors.Is(err, mp.ErrUnsupported) {
		t.Skip(err)
	}
	t.Cleanup(func() { os.Remove(shmFile(name)) })
	return name
}

// requireNameExists fails the test unless the block name still has its
// file.
func requireNameExists(t *testing.T, name string) {
	t.Helper()
	_, err := os.Stat(shmFile(name))
	require.NoError(t, err, "the name %s is gone", name)
}

func requireNameGone(t *testing.T, name string) {
	t.Helper()
	_, err := os.Stat(shmFile(name))
	require.ErrorIs(t, err, fs.ErrNotExist, "the name %s is still there", name)
}

func TestSharedMemoryChildOpensByNameAndAnswers(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			question := "question from " + string(method)
			m := newSharedMemory(t, "", 64)
			copy(m.Buf(), question)
			_, err := run(t, method, answerInSharedMemory, m.Name(), question, ": answer")
			require.NoError(t, err)
			assert.Equal(t, question+": answer", string(bytes.TrimRight(m.Buf(), "\x00")))
			// The child opened and closed the block, and exited: the name
			// stays for the process that created it.
			requireNameExists(t, m.Name())
		})
	}
}

// pythonProgram returns a command that runs the Python program script
// with args, killed after a minute, and the buffer that collects its
// stderr. It skips the test where python3 is missing.
func pythonProgram(t *testing.T, script string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	path, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, path, append([]string{"-c", script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

// pythonCreates creates the block argv[1] of argv[2] bytes, writes a
// greeting, prints the name, waits for a line on stdin, prints what Go
// wrote at offset 32, and closes and unlinks the block.
const pythonCreates = `
import sys
from multiprocessing import shared_memory
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=int(sys.argv[2]))
shm.buf[:17] = b"hello from python"
print(shm.name, flush=True)
sys.stdin.readline()
print(bytes(shm.buf[32:45]).decode(), flush=True)
shm.close()
shm.unlink()
`

func TestSharedMemoryFromPython(t *testing.T) {
	name := freeSharedMemoryName(t)
	cmd, stderr := pythonProgram(t, pythonCreates, name, "100")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := bufio.NewReader(stdout)

	line, err := lines.ReadString('\n')
	require.NoError(t, err, "Python's stderr: %s", stderr)
	require.Equal(t, name+"\n", line)
	m := openSharedMemory(t, name)
	assert.Equal(t, 100, m.Size())
	assert.Equal(t, "hello from python", string(m.Buf()[:17]))
	copy(m.Buf()[32:], "hello from go")
	require.NoError(t, m.Close())
	_, err = stdin.Write([]byte("\n"))
	require.NoError(t, err)

	line, err = lines.ReadString('\n')
	require.NoError(t, err, "Python's stderr: %s", stderr)
	assert.Equal(t, "hello from go\n", line)
	require.NoError(t, cmd.Wait(), "Python's stderr: %s", stderr)
	assert.Empty(t, stderr.String())
	// Python's unlink removed the very file Go opened.
	requireNameGone(t, name)
}

// pythonOpens opens the block argv[1], takes it off its resource tracker's
// list, prints its size and first 13 bytes, and writes a greeting at
// offset 32.
const pythonOpens = `
import sys
from multiprocessing import resource_tracker, shared_memory
shm = shared_memory.SharedMemory(name=sys.argv[1])
# Before 3.13 (track=False) Python registers a block it merely opened, and
# its tracker unlinks it at exit: CPython gh-82300.
resource_tracker.unregister(shm._name, "shared_memory")
print(shm.size, bytes(shm.buf[:13]).decode())
shm.buf[32:49] = b"hello from python"
shm.close()
`

func TestSharedMemoryToPython(t *testing.T) {
	m := newSharedMemory(t, "", 100)
	copy(m.Buf(), "hello from go")
	cmd, stderr := pythonProgram(t, pythonOpens, m.Name())
	// Wait, inside Output, returns only after Python's resource tracker
	// has exited too, since it shares Python's stderr: had it unlinked the
	// name, the name would be gone by now.
	out, err := cmd.Output()
	require.NoError(t, err, "Python's stderr: %s", stderr)
	assert.Equal(t, "100 hello from go\n", string(out))
	assert.Equal(t, "hello from python", string(m.Buf()[32:49]))
	assert.Empty(t, stderr.String())
	requireNameExists(t, m.Name())
	require.NoError(t, m.Unlink())
	requireNameGone(t, m.Name())
}

func TestSharedMemoryMissingNameIsNotExist(t *testing.T) {
	name := freeSharedMemoryName(t)
	_, err := mp.OpenSharedMemory(name)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), name)
	assert.True(t, strings.HasPrefix(err.Error(), "multiprocessing: "), err.Error())
}

func TestSharedMemoryTakenNameIsExist(t *testing.T) {
	m := newSharedMemory(t, "", 16)
	copy(m.Buf(), "first")
	again, err := mp.CreateSharedMemory(m.Name(), 32)
	require.ErrorIs(t, err, fs.ErrExist)
	assert.Nil(t, again)
	assert.Contains(t, err.Error(), m.Name())
	// The block that has the name is untouched.
	other := openSharedMemory(t, m.Name())
	assert.Equal(t, 16, other.Size())
	assert.Equal(t, "first", string(other.Buf()[:5]))
}

// tryCreateSharedMemory returns CreateSharedMemory's error, and unlinks
// the block when there was none.
func tryCreateSharedMemory(t *testing.T, name string, size int) error {
	m, err := mp.CreateSharedMemory(name, size)
	if err == nil {
		t.Cleanup(func() {
			m.Close()
			m.Unlink()
		})
	}
	return err
}

func TestSharedMemoryBadArgs(t *testing.T) {
	name := freeSharedMemoryName(t)
	for _, bad := range []string{"/", "//x", "a/b", "/a/b", "a/", ".", "/..", "a\x00b"} {
		err := tryCreateSharedMemory(t, bad, 16)
		require.ErrorIs(t, err, mp.ErrBadArgs, "create %q", bad)
		assert.Contains(t, err.Error(), strconv.Quote(bad), "the error names the culprit")
		_, err = mp.OpenSharedMemory(bad)
		assert.ErrorIs(t, err, mp.ErrBadArgs, "open %q", bad)
	}
	// "" is a fresh name for CreateSharedMemory, and no name to open.
	_, err := mp.OpenSharedMemory("")
	assert.ErrorIs(t, err, mp.ErrBadArgs, "open \"\"")
	for _, size := range []int{0, -1} {
		err = tryCreateSharedMemory(t, name, size)
		require.ErrorIs(t, err, mp.ErrBadArgs, "size %d", size)
		assert.Contains(t, err.Error(), fmt.Sprint("size ", size))
		err = tryCreateSharedMemory(t, "", size)
		assert.ErrorIs(t, err, mp.ErrBadArgs, "size %d with a fresh name", size)
	}
	requireNameGone(t, name)
}

func TestSharedMemoryFreshNamesArePsmAndHex(t *testing.T) {
	m := newSharedMemory(t, "", 4096)
	other := newSharedMemory(t, "", 4096)
	assert.Regexp(t, `^psm_[0-9a-f]{10}$`, m.Name())
	assert.NotEqual(t, m.Name(), other.Name())
	st, err := os.Stat(shmFile(m.Name()))
	require.NoError(t, err)
	assert.EqualValues(t, 4096, st.Size())
	assert.Zero(t, st.Mode().Perm()&0o077, "only the owner may open it, as with Python's mode 0600")
	assert.Equal(t, 4096, m.Size())
	assert.Len(t, m.Buf(), 4096)
	assert.Equal(t, make([]byte, 4096), m.Buf(), "a new block is all zeros")
}

func TestSharedMemoryLeadingSlashIsDropped(t *testing.T) {
	name := freeSharedMemoryName(t)
	m := newSharedMemory(t, "/"+name, 8)
	assert.Equal(t, name, m.Name())
	requireNameExists(t, name)
	other := openSharedMemory(t, "/"+name)
	assert.Equal(t, name, other.Name())
}

func TestSharedMemoryHandlesShareBytes(t *testing.T) {
	m := newSharedMemory(t, "", 8)
	other := openSharedMemory(t, m.Name())
	assert.Equal(t, 8, other.Size())
	copy(m.Buf(), "ab")
	copy(other.Buf()[2:], "cd")
	assert.Equal(t, "abcd", string(other.Buf()[:4]))
	assert.Equal(t, "abcd", string(m.Buf()[:4]))
}

func TestSharedMemoryCloseTwiceThenUnlink(t *testing.T) {
	m := newSharedMemory(t, "", 8)
	name := m.Name()
	require.NoError(t, m.Close())
	assert.Nil(t, m.Buf())
	require.NoError(t, m.Close())
	assert.Nil(t, m.Buf())
	assert.Equal(t, name, m.Name())
	assert.Equal(t, 8, m.Size())
	// Closing left the name for Unlink, which needs no mapping.
	requireNameExists(t, name)
	require.NoError(t, m.Unlink())
	requireNameGone(t, name)
}

func TestSharedMemoryUnlinkRemovesNameNotMappings(t *testing.T) {
	m := newSharedMemory(t, "", 8)
	name := m.Name()
	other := openSharedMemory(t, name)
	require.NoError(t, other.Unlink())
	requireNameGone(t, name)
	_, err := mp.OpenSharedMemory(name)
	require.ErrorIs(t, err, fs.ErrNotExist)
	// Both mappings still share the memory.
	copy(m.Buf(), "still")
	assert.Equal(t, "still", string(other.Buf()[:5]))
	err = m.Unlink()
	require.ErrorIs(t, err, fs.ErrNotExist, "a second Unlink")
	assert.True(t, strings.HasPrefix(err.Error(), "multiprocessing: "), err.Error())
	// The name is free for a new block, which is not the old one.
	fresh := newSharedMemory(t, name, 8)
	assert.Equal(t, make([]byte, 8), fresh.Buf())
}

func TestSharedMemoryCloseAndUnlinkFromManyGoroutines(t *testing.T) {
	m := newSharedMemory(t, "", 8)
	const n = 8
	var wg sync.WaitGroup
	closeErrs := make([]error, n)
	unlinkErrs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_ = m.Buf()
			closeErrs[i] = m.Close()
			unlinkErrs[i] = m.Unlink()
		})
	}
	wg.Wait()
	unlinked := 0
	for i := range n {
		assert.NoError(t, closeErrs[i])
		if unlinkErrs[i] == nil {
			unlinked++
		} else {
			assert.ErrorIs(t, unlinkErrs[i], fs.ErrNotExist)
		}
	}
	assert.Equal(t, 1, unlinked, "Unlink succeeds once")
	assert.Nil(t, m.Buf())
	requireNameGone(t, m.Name())
}

func TestSharedMemoryEmptyBlockIsRefused(t *testing.T) {
	name := freeSharedMemoryName(t)
	require.NoError(t, os.WriteFile(shmFile(name), nil, 0o600))
	m, err := mp.OpenSharedMemory(name)
	require.Error(t, err)
	assert.Nil(t, m)
	assert.Contains(t, err.Error(), "empty")
	requireNameExists(t, name)
}

func TestSharedMemoryZeroValueIsClosedAndNameless(t *testing.T) {
	var m mp.SharedMemory
	assert.Nil(t, m.Buf())
	assert.Empty(t, m.Name())
	assert.Zero(t, m.Size())
	assert.NoError(t, m.Close())
	assert.ErrorIs(t, m.Unlink(), mp.ErrBadArgs)
}

func TestSharedMemoryElsewhereIsUnsupported(t *testing.T) {
	if runtime.GOOS == "linux" {
		t.Skip("Linux has shared memory blocks")
	}
	_, err := mp.CreateSharedMemory("", 8)
	assert.ErrorIs(t, err, mp.ErrUnsupported)
	assert.ErrorIs(t, err, errors.ErrUnsupported)
	_, err = mp.OpenSharedMemory("psm_0123456789")
	assert.ErrorIs(t, err, mp.ErrUnsupported)
}
