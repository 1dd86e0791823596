package multiprocessing_test

import (
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	mp "github.com/mpgo/multiprocessing"
)

func TestExitCodes(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			t.Run("ReturnGivesZero", func(t *testing.T) {
				p, err := run(t, method, noop)
				require.NoError(t, err)
				code, done := p.ExitCode()
				assert.True(t, done)
				assert.Equal(t, 0, code)
			})
			t.Run("ErrorGivesOneWithMessage", func(t *testing.T) {
				p, err := run(t, method, returnError, "no luck")
				var exit *mp.ExitError
				require.ErrorAs(t, err, &exit)
				assert.Equal(t, 1, exit.Code)
				assert.Equal(t, "no luck", exit.Message)
				assert.Equal(t, p.Name, exit.Name)
				assert.Equal(t, p.Pid(), exit.Pid)
				assert.Contains(t, err.Error(), "no luck")
			})
			t.Run("PanicGivesOneWithValueAndStack", func(t *testing.T) {
				_, err := run(t, method, panicWith, "boom")
				var exit *mp.ExitError
				require.ErrorAs(t, err, &exit)
				assert.Equal(t, 1, exit.Code)
				assert.Contains(t, exit.Message, "panic: boom")
				assert.Contains(t, exit.Message, "multiprocessing_test.panicWith")
			})
			t.Run("PanicInAGoroutineGivesTwo", func(t *testing.T) {
				_, err := run(t, method, panicInGoroutine)
				var exit *mp.ExitError
				require.ErrorAs(t, err, &exit)
				assert.Equal(t, 2, exit.Code)
			})
			t.Run("OsExitGivesItsCode", func(t *testing.T) {
				p, err := run(t, method, exitWith, 7)
				var exit *mp.ExitError
				require.ErrorAs(t, err, &exit)
				assert.Equal(t, 7, exit.Code)
				assert.Empty(t, exit.Message)
				code, _ := p.ExitCode()
				assert.Equal(t, 7, code)
			})
			signals := map[string]struct {
				send func(*mp.Process) error
				code int
			}{
				"TerminateGivesMinusSIGTERM": {(*mp.Process).Terminate, -int(syscall.SIGTERM)},
				"KillGivesMinusSIGKILL":      {(*mp.Process).Kill, -int(syscall.SIGKILL)},
				"InterruptGivesMinusSIGINT":  {(*mp.Process).Interrupt, -int(syscall.SIGINT)},
			}
			for name, tc := range signals {
				t.Run(name, func(t *testing.T) {
					ctx, err := mp.GetContext(method)
					require.NoError(t, err)
					p := ctx.Process(sleepForever)
					require.NoError(t, p.Start())
					assert.True(t, p.IsAlive())
					require.ErrorIs(t, p.JoinTimeout(0), mp.ErrTimeout)
					require.NoError(t, tc.send(p))
					var exit *mp.ExitError
					require.ErrorAs(t, p.Join(), &exit)
					assert.Equal(t, tc.code, exit.Code)
					assert.False(t, p.IsAlive())
					code, done := p.ExitCode()
					assert.Equal(t, tc.code, code)
					assert.True(t, done)
					// A signal to a process that has ended does nothing.
					assert.NoError(t, tc.send(p))
					require.NoError(t, p.Close())
				})
			}
		})
	}
}

func TestChildErrorGoesToItsStderr(t *testing.T) {
	out, err := helper(t, "failing-children")
	require.NoError(t, err, out)
	assert.Regexp(t, `Process Process-1:\nboom\n`, out)
	assert.Regexp(t, `Process Process-2:\npanic: boom\n`, out)
}

func TestJoinTimeout(t *testing.T) {
	p := mp.NewProcess(sleepForever)
	require.NoError(t, p.Start())
	start := time.Now()
	require.ErrorIs(t, p.JoinTimeout(50*time.Millisecond), mp.ErrTimeout)
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	require.NoError(t, p.Kill())
	var exit *mp.ExitError
	require.ErrorAs(t, p.JoinTimeout(20*time.Second), &exit)
	assert.Equal(t, -9, exit.Code)
}

func TestDoneClosesWhenTheChildEnds(t *testing.T) {
	p := mp.NewProcess(sleepForever)
	done := p.Done()
	require.NoError(t, p.Start())
	select {
	case <-done:
		t.Fatal("Done closed while the child runs")
	default:
	}
	require.NoError(t, p.Terminate())
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Done not closed after the child ended")
	}
	code, ok := p.ExitCode()
	assert.True(t, ok)
	assert.Equal(t, -15, code)
}

func TestSentinelErrors(t *testing.T) {
	t.Run("UnsupportedIsGos", func(t *testing.T) {
		assert.ErrorIs(t, mp.ErrUnsupported, errors.ErrUnsupported)
		r, w, err := mp.Pipe(false)
		if errors.Is(err, mp.ErrUnsupported) {
			return // Windows: Pipe itself says so
		}
		require.NoError(t, err)
		defer r.Close()
		defer w.Close()
		err = r.Send(1) // the receiving end of a one-way pipe
		assert.ErrorIs(t, err, mp.ErrUnsupported)
		assert.ErrorIs(t, err, errors.ErrUnsupported)
		assert.NotErrorIs(t, mp.ErrClosed, errors.ErrUnsupported)
	})
	t.Run("StartTwice", func(t *testing.T) {
		p := mp.NewProcess(noop)
		require.NoError(t, p.Start())
		assert.ErrorIs(t, p.Start(), mp.ErrAlreadyStarted)
		require.NoError(t, p.Join())
		assert.ErrorIs(t, p.Start(), mp.ErrAlreadyStarted)
	})
	t.Run("JoinBeforeStart", func(t *testing.T) {
		p := mp.NewProcess(noop)
		assert.ErrorIs(t, p.Join(), mp.ErrNotStarted)
		assert.ErrorIs(t, p.JoinTimeout(time.Millisecond), mp.ErrNotStarted)
		assert.ErrorIs(t, p.Terminate(), mp.ErrNotStarted)
		assert.Equal(t, 0, p.Pid())
		_, done := p.ExitCode()
		assert.False(t, done)
		assert.False(t, p.IsAlive())
	})
	t.Run("JoinSelf", func(t *testing.T) {
		assert.ErrorIs(t, mp.CurrentProcess().Join(), mp.ErrNotChild)
		assert.ErrorIs(t, mp.CurrentProcess().Terminate(), mp.ErrNotChild)
		assert.EqualError(t, mp.CurrentProcess().Terminate(), "multiprocessing: can only terminate a child process")
		assert.EqualError(t, mp.CurrentProcess().Kill(), "multiprocessing: can only kill a child process")
		assert.EqualError(t, mp.CurrentProcess().Interrupt(), "multiprocessing: can only interrupt a child process")
		assert.EqualError(t, mp.CurrentProcess().Close(), "multiprocessing: can only close a child process")
		assert.ErrorIs(t, mp.CurrentProcess().Close(), mp.ErrNotChild)
		assert.ErrorIs(t, mp.CurrentProcess().Start(), mp.ErrAlreadyStarted)
	})
	t.Run("CloseWhileRunning", func(t *testing.T) {
		p := mp.NewProcess(sleepForever)
		require.NoError(t, p.Start())
		assert.ErrorIs(t, p.Close(), mp.ErrStillRunning)
		require.NoError(t, p.Kill())
		_ = p.Join()
		require.NoError(t, p.Close())
		assert.NoError(t, p.Close(), "Close twice")
		assert.ErrorIs(t, p.Join(), mp.ErrClosed)
		assert.ErrorIs(t, p.JoinTimeout(0), mp.ErrClosed)
		assert.ErrorIs(t, p.Start(), mp.ErrClosed)
		assert.ErrorIs(t, p.Terminate(), mp.ErrClosed)
		assert.ErrorIs(t, p.Kill(), mp.ErrClosed)
		assert.ErrorIs(t, p.Interrupt(), mp.ErrClosed)
		assert.False(t, p.IsAlive())
		assert.NotZero(t, p.Pid())
	})
	t.Run("CloseBeforeStart", func(t *testing.T) {
		p := mp.NewProcess(noop)
		require.NoError(t, p.Close())
		assert.ErrorIs(t, p.Start(), mp.ErrClosed)
	})
	t.Run("NotRegistered", func(t *testing.T) {
		err := mp.NewProcess(unregistered).Start()
		assert.ErrorIs(t, err, mp.ErrNotRegistered)
		assert.Contains(t, err.Error(), "multiprocessing_test.unregistered")
		err = mp.NewProcess(func() {}).Start()
		assert.ErrorIs(t, err, mp.ErrNotRegistered)
		assert.Contains(t, err.Error(), "function literal")
		assert.ErrorIs(t, mp.NewProcess(nil).Start(), mp.ErrNotRegistered)
		assert.ErrorIs(t, mp.NewProcess(&unregisteredRunner{}).Start(), mp.ErrNotRegistered)
		assert.ErrorIs(t, mp.NewProcess(42).Start(), mp.ErrBadArgs)
	})
	t.Run("BadArgs", func(t *testing.T) {
		err := mp.NewProcess(exitWith, "seven").Start()
		require.ErrorIs(t, err, mp.ErrBadArgs)
		assert.Contains(t, err.Error(), "multiprocessing_test.exitWith")
		assert.Contains(t, err.Error(), "argument 1: have string, want int")
		err = mp.NewProcess(exitWith).Start()
		require.ErrorIs(t, err, mp.ErrBadArgs)
		assert.Contains(t, err.Error(), "takes 1 arguments, 0 given")
		err = mp.NewProcess(sum, os.Stdout, "x", 1, "two").Start()
		require.ErrorIs(t, err, mp.ErrBadArgs)
		assert.Contains(t, err.Error(), "argument 4: have string, want int")
		err = mp.NewProcess(exitWith, nil).Start()
		require.ErrorIs(t, err, mp.ErrBadArgs)
		assert.Contains(t, err.Error(), "have nil, want int")
		err = mp.NewProcess(describeAny, os.Stdout, make(chan int), nil, nil).Start()
		require.ErrorIs(t, err, mp.ErrBadArgs)
		assert.Contains(t, err.Error(), "argument 2")
		err = mp.NewProcess(&counter{}, 1).Start()
		require.ErrorIs(t, err, mp.ErrBadArgs)
	})
	t.Run("DaemonChangedAfterStart", func(t *testing.T) {
		p := mp.NewProcess(sleepForever)
		require.NoError(t, p.Start())
		p.Daemon = true
		for name, call := range map[string]func() error{
			"Join":        p.Join,
			"JoinTimeout": func() error { return p.JoinTimeout(time.Second) },
			"Terminate":   p.Terminate,
			"Kill":        p.Kill,
			"Interrupt":   p.Interrupt,
		} {
			err := call()
			require.ErrorIs(t, err, mp.ErrAlreadyStarted, name)
			assert.Contains(t, err.Error(), p.Name+": process has already started: Daemon changed after Start (from false to true)", name)
		}
		assert.True(t, p.IsAlive(), "nothing was done")
		assert.NotContains(t, p.String(), "daemon", "the change has no effect")
		p.Daemon = false
		require.NoError(t, p.Kill())
		require.Error(t, p.Join())
		p.Daemon = true
		require.ErrorIs(t, p.Close(), mp.ErrAlreadyStarted)
		p.Daemon = false
		require.NoError(t, p.Close())
	})
	t.Run("UnencodableArgs", func(t *testing.T) {
		err := mp.NewProcess(describeAny, os.Stdout, func() {}, nil, nil).Start()
		require.ErrorIs(t, err, mp.ErrBadArgs)
		assert.Contains(t, err.Error(), "argument 2")
		assert.Contains(t, err.Error(), "func()")
	})
	t.Run("MethodValueTarget", func(t *testing.T) {
		err := mp.NewProcess(time.Now().String).Start()
		require.ErrorIs(t, err, mp.ErrNotRegistered)
		assert.Contains(t, err.Error(), "String")
	})
	t.Run("BadArgsStartNoProcess", func(t *testing.T) {
		p := mp.NewProcess(exitWith, "seven")
		require.Error(t, p.Start())
		assert.Equal(t, 0, p.Pid())
		assert.Empty(t, mp.ActiveChildren())
		assert.ErrorIs(t, p.Join(), mp.ErrNotStarted)
	})
}

func unregistered() {}

type unregisteredRunner struct{}

func (*unregisteredRunner) Run() error { return nil }

func TestRegisterMisusePanics(t *testing.T) {
	assert.PanicsWithValue(t, `multiprocessing: RegisterName("github.com/mpgo/multiprocessing_test.noop"): name registered twice`, func() { mp.Register(noop) })
	assert.Panics(t, func() { mp.Register(nil) })
	assert.Panics(t, func() { mp.Register(42) })
	assert.Panics(t, func() { mp.Register(func() {}) })
	assert.Panics(t, func() { mp.Register(time.Now().String) })
	assert.Panics(t, func() { mp.RegisterName("bad-results", func() (int, int) { return 1, 2 }) })
	assert.Panics(t, func() { mp.RegisterName("three-results", func() (int, int, error) { return 1, 2, nil }) })
	assert.Panics(t, func() { mp.RegisterName("", noop) })
}

func TestArgumentsTravel(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			r, w := reportPipe(t)
			_, err := run(t, method, sum, w, "total=", 1, 2, 3, 4)
			require.NoError(t, err)
			assert.Equal(t, "total=10/4", receive(t, r).Text)

			r, w = reportPipe(t)
			_, err = run(t, method, sum, w, "none=")
			require.NoError(t, err)
			assert.Equal(t, "none=0/0", receive(t, r).Text)

			r, w = reportPipe(t)
			_, err = run(t, method, describeAny, w, 3.5, &point{1, 2}, map[string]int{"a": 1})
			require.NoError(t, err)
			assert.Equal(t, "3.5 &{1 2} map[a:1]", receive(t, r).Text)

			r, w = reportPipe(t)
			_, err = run(t, method, describeAny, w, nil, nil, nil)
			require.NoError(t, err)
			assert.Equal(t, "<nil> <nil> map[]", receive(t, r).Text)

			// Larger than a pipe's buffer: read before Join.
			r, w = reportPipe(t)
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			p := ctx.Process(describe, w, string(make([]byte, 1<<20)))
			require.NoError(t, p.Start())
			assert.Len(t, receive(t, r).Text, 1<<20)
			require.NoError(t, p.Join())
		})
	}
}

func TestRunnerFieldsTravel(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			r, w := reportPipe(t)
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			c := &counter{Max: 42, Out: w, hidden: 7}
			c.Process = ctx.Process(c)
			require.NoError(t, c.Start())
			require.NoError(t, c.Join())
			d := receive(t, r)
			assert.Equal(t, "max=42 hidden=0", d.Text, "exported fields travel, unexported ones do not")
			assert.Equal(t, c.Name, d.Name, "the embedded *Process is the child's CurrentProcess")
			assert.Equal(t, c.Pid(), d.Pid)
		})
	}
}

func TestRunRunsInTheCallingProcess(t *testing.T) {
	r, w := reportPipe(t)
	require.NoError(t, mp.NewProcess(describe, w, "here").Run())
	d := receive(t, r)
	assert.Equal(t, os.Getpid(), d.Pid)
	assert.Equal(t, "here", d.Text)
	assert.EqualError(t, mp.NewProcess(returnError, "x").Run(), "x")
	assert.ErrorIs(t, mp.NewProcess(returnError).Run(), mp.ErrBadArgs)

	r, w = reportPipe(t)
	c := &counter{Max: 3, Out: w, hidden: 1}
	c.Process = mp.NewProcess(c)
	require.NoError(t, c.Run())
	assert.Equal(t, "max=3 hidden=1", receive(t, r).Text)
}

func TestNames(t *testing.T) {
	a, b := mp.NewProcess(noop), mp.NewProcess(noop)
	na, err := strconv.Atoi(a.Name[len("Process-"):])
	require.NoError(t, err)
	assert.Equal(t, "Process-"+strconv.Itoa(na+1), b.Name)
	assert.Equal(t, "MainProcess", mp.CurrentProcess().Name)
	assert.Nil(t, mp.ParentProcess())

	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			r, w := reportPipe(t)
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			p := ctx.Process(startChild, w, false)
			require.NoError(t, p.Start())
			require.NoError(t, p.Join())
			grandchild := receive(t, r)
			assert.Equal(t, p.Name+":1", grandchild.Name)
			assert.Equal(t, p.Name, grandchild.ParentName)
			assert.Equal(t, p.Pid(), grandchild.ParentPid)
			if method == mp.Forkserver {
				// As in Python, the forkserver is the real parent.
				assert.NotEqual(t, p.Pid(), grandchild.Ppid)
			} else {
				assert.Equal(t, p.Pid(), grandchild.Ppid)
			}

			r, w = reportPipe(t)
			p = ctx.Process(describe, w, "")
			p.Name = "worker"
			require.NoError(t, p.Start())
			require.NoError(t, p.Join())
			child := receive(t, r)
			assert.Equal(t, "worker", child.Name)
			assert.Equal(t, "MainProcess", child.ParentName)
			assert.Equal(t, os.Getpid(), child.ParentPid)
			assert.Equal(t, mp.ErrNotChild.Error(), child.CurrentJoin)
		})
	}
}

func TestString(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	assert.Equal(t, "<Process name='MainProcess' parent=None started>", mp.CurrentProcess().String())
	p := mp.NewProcess(sleepForever)
	p.Name = "Process-1"
	assert.Equal(t, "<Process name='Process-1' parent="+pid+" initial>", p.String())
	p.Daemon = true
	require.NoError(t, p.Start())
	child := strconv.Itoa(p.Pid())
	assert.Equal(t, "<Process name='Process-1' pid="+child+" parent="+pid+" started daemon>", p.String())
	require.NoError(t, p.Terminate())
	_ = p.Join()
	assert.Equal(t, "<Process name='Process-1' pid="+child+" parent="+pid+" stopped exitcode=-SIGTERM daemon>", p.String())
	require.NoError(t, p.Close())
	assert.Equal(t, "<Process name='Process-1' pid="+child+" parent="+pid+" closed daemon>", p.String())

	q, err := run(t, mp.Spawn, exitWith, 3)
	require.Error(t, err)
	assert.Regexp(t, regexp.MustCompile(`^<Process name='Process-\d+' pid=\d+ parent=`+pid+` stopped exitcode=3>$`), q.String())
}

func TestAuthkeyAndDaemonAreInherited(t *testing.T) {
	key := mp.CurrentProcess().Authkey
	assert.Len(t, key, 32)
	p := mp.NewProcess(noop)
	assert.Equal(t, key, p.Authkey)
	assert.False(t, p.Daemon)

	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			r, w := reportPipe(t)
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			p := ctx.Process(describe, w, "")
			p.Authkey = []byte("a key of my own")
			p.Daemon = true
			require.NoError(t, p.Start())
			require.NoError(t, p.Join())
			d := receive(t, r)
			assert.Equal(t, []byte("a key of my own"), d.Authkey)
			assert.True(t, d.Daemon)
		})
	}
}

func TestDaemonMayNotHaveChildren(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			r, w := reportPipe(t)
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			p := ctx.Process(startChild, w, true)
			p.Daemon = true
			require.NoError(t, p.Start())
			require.NoError(t, p.Join())
			d := receive(t, r)
			assert.True(t, d.ChildDaemonFlag, "a daemon's children are daemons by default")
			assert.Equal(t, "start: "+mp.ErrDaemonChildren.Error(), d.Text)
		})
	}
}

func TestActiveChildren(t *testing.T) {
	a, b := mp.NewProcess(sleepForever), mp.NewProcess(sleepForever)
	require.NoError(t, a.Start())
	require.NoError(t, b.Start())
	assert.ElementsMatch(t, []*mp.Process{a, b}, mp.ActiveChildren())
	require.NoError(t, a.Kill())
	eventually(t, 20*time.Second, func() bool {
		c := mp.ActiveChildren()
		return len(c) == 1 && c[0] == b
	}, "the killed child leaves ActiveChildren")
	require.NoError(t, b.Kill())
	eventually(t, 20*time.Second, func() bool { return len(mp.ActiveChildren()) == 0 }, "no active children")
	assert.Error(t, a.Join())
	assert.Error(t, b.Join())
	assert.GreaterOrEqual(t, mp.CPUCount(), 1)
}

func TestShutdownTerminatesDaemonsAndJoinsTheRest(t *testing.T) {
	d := mp.NewProcess(sleepForever)
	d.Daemon = true
	n := mp.NewProcess(exitWith, 4)
	require.NoError(t, d.Start())
	require.NoError(t, n.Start())
	mp.Shutdown()
	code, done := d.ExitCode()
	assert.True(t, done)
	assert.Equal(t, -15, code)
	code, done = n.ExitCode()
	assert.True(t, done)
	assert.Equal(t, 4, code)
	assert.Empty(t, mp.ActiveChildren())
}

func TestJoinFromManyGoroutines(t *testing.T) {
	p := mp.NewProcess(exitWith, 9)
	require.NoError(t, p.Start())
	errs := make(chan error, 8)
	for range 8 {
		go func() { errs <- p.Join() }()
	}
	for range 8 {
		var exit *mp.ExitError
		require.ErrorAs(t, <-errs, &exit)
		assert.Equal(t, 9, exit.Code)
	}
	assert.True(t, errors.Is(p.Close(), nil))
}

// Children that end while others start close descriptors (their pidfds)
// under the fork method's listing of open descriptors: every Start must
// still succeed.
func TestManyStartsWhileChildrenEnd(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			procs := make([]*mp.Process, 150)
			for i := range procs {
				procs[i] = ctx.Process(noop)
				require.NoError(t, procs[i].Start(), "start %d", i)
			}
			for _, p := range procs {
				require.NoError(t, p.Join())
			}
		})
	}
}

// A daemon child dies with its parent, killed: by the parent-death signal
// and the lifeline on Linux, by the lifeline elsewhere.
func TestDaemonGrandchildDiesWithItsParent(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			r, w := reportPipe(t)
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			p := ctx.Process(startDaemonAndWait, w)
			require.NoError(t, p.Start())
			grandchild := receive(t, r).Pid
			require.False(t, gone(grandchild))
			require.NoError(t, p.Kill())
			_ = p.Join()
			eventually(t, 2*time.Second, func() bool { return gone(grandchild) }, "the daemon grandchild outlived its parent")
		})
	}
}

// An outcome longer than a pipe holds (a deep panic, a long error) does
// not keep the child from ending.
func TestLongOutcomeReachesTheParent(t *testing.T) {
	for _, method := range methods {
		t.Run(string(method), func(t *testing.T) {
			ctx, err := mp.GetContext(method)
			require.NoError(t, err)
			p := ctx.Process(returnError, strings.Repeat("x", 100_000))
			require.NoError(t, p.Start())
			err = p.JoinTimeout(20 * time.Second)
			require.NotErrorIs(t, err, mp.ErrTimeout, "the child did not end")
			var exit *mp.ExitError
			require.ErrorAs(t, err, &exit)
			assert.Equal(t, 1, exit.Code)
			assert.Contains(t, exit.Message, strings.Repeat("x", 1000))
		})
	}
}
