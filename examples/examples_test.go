// The book's programs, built and run as a user would, their output checked.
package examples_test

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runExample builds ./NAME and runs it, returning its output lines.
func runExample(t *testing.T, name string) []string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, "./"+name).CombinedOutput()
	require.NoError(t, err, string(out))
	cmd := exec.Command(bin)
	out, err = cmd.Output()
	require.NoError(t, err, string(out))
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

func TestFork(t *testing.T) {
	lines := runExample(t, "fork")
	require.Len(t, lines, 7, lines)
	start := regexp.MustCompile(`^父进程（(\d+)）开始执行$`).FindStringSubmatch(lines[0])
	require.NotNil(t, start, lines[0])
	parent := start[1]
	var child string
	childSeen := false
	for _, line := range lines[1:] {
		if m := regexp.MustCompile(`^子进程，其ID为 \((\d+)\), 父进程ID为 \((\d+)\)$`).FindStringSubmatch(line); m != nil {
			assert.Equal(t, parent, m[2], "the child's parent is the parent")
			child, childSeen = m[1], true
		}
	}
	require.True(t, childSeen, lines)
	assert.Contains(t, lines, "我 ("+parent+") 创建的子进程ID为 ("+child+").")
	assert.Contains(t, lines, "进程进入："+parent)
	assert.Contains(t, lines, "进程进入："+child)
	assert.Contains(t, lines, "进程结束："+child)
	assert.Equal(t, "进程结束："+parent, lines[6], "the parent ends last")
}

// checkCounting checks the output of firstprocess and secondprocess: the
// main process counts to 100 and starts two children at 20, each of which
// counts to 100.
func checkCounting(t *testing.T, lines []string) {
	t.Helper()
	mainLine := regexp.MustCompile(`^\((\d+)\)主进程: (\d+)$`)
	childLine := regexp.MustCompile(`^\((\d+)\)子进程（父进程:\((\d+)\)）：(\d+)$`)
	var mainPid string
	mainCount := 0
	children := map[string]int{}
	for _, line := range lines {
		if m := mainLine.FindStringSubmatch(line); m != nil {
			mainPid = m[1]
			assert.Equal(t, mainCount, atoi(t, m[2]), "main counts in order")
			mainCount++
		} else if m := childLine.FindStringSubmatch(line); m != nil {
			assert.Equal(t, children[m[1]], atoi(t, m[3]), "a child counts in order")
			children[m[1]]++
			assert.Equal(t, mainPid, m[2], "the children's parent is the main process")
		} else {
			assert.Equal(t, "主进程执行完成!", line)
		}
	}
	assert.Equal(t, 100, mainCount)
	assert.Len(t, children, 2)
	for pid, n := range children {
		assert.Equal(t, 100, n, "child %s", pid)
	}
	assert.Contains(t, lines, "主进程执行完成!")
	assert.Len(t, lines, 301)
}

func TestFirstProcess(t *testing.T) { checkCounting(t, runExample(t, "firstprocess")) }

func TestSecondProcess(t *testing.T) { checkCounting(t, runExample(t, "secondprocess")) }

// checkQueueProgram checks start_method and context: the child prints its
// pid, and the parent prints what the child put into the queue.
func checkQueueProgram(t *testing.T, lines []string) {
	t.Helper()
	require.Len(t, lines, 2, lines)
	assert.Regexp(t, `^被启动的新进程: \(\d+\)$`, lines[0])
	assert.Equal(t, "Python", lines[1])
}

func TestStartMethod(t *testing.T) { checkQueueProgram(t, runExample(t, "startmethod")) }

func TestContext(t *testing.T) { checkQueueProgram(t, runExample(t, "context")) }

func TestPool(t *testing.T) {
	lines := runExample(t, "pool")
	require.Len(t, lines, 1, lines)
	m := regexp.MustCompile(`^(\d+) words in (\d+) Go files under .+, counted by (\d+) workers$`).FindStringSubmatch(lines[0])
	require.NotNil(t, m, lines[0])
	assert.Greater(t, atoi(t, m[1]), 1_000_000)
	assert.Greater(t, atoi(t, m[2]), 1_000)
}

func TestQueueServerAndClient(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"queueserver", "queueclient"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./"+name).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	server := exec.Command(filepath.Join(dir, "queueserver"), "-addr", "127.0.0.1:0", "-key", "k")
	stdout, err := server.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, server.Start())
	defer server.Process.Kill()
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "the server printed nothing")
	addr, ok := strings.CutPrefix(lines.Text(), "serving on ")
	require.True(t, ok, lines.Text())

	out, err := exec.Command(filepath.Join(dir, "queueclient"), "-addr", addr, "-key", "k").Output()
	require.NoError(t, err)
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, got, 10, got)
	for i, line := range got {
		assert.Equal(t, fmt.Sprintf("took job %d", i), line)
	}
	require.True(t, lines.Scan())
	assert.Equal(t, "every job taken", lines.Text())
	require.NoError(t, server.Wait())
}
