package spool_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// These tests run engines in child processes: the test binary re-executed
// with only TestCrashChild selected and SPOOL_CRASH_CHILD naming what the
// child does. A child talks to the parent through stdout lines that start
// with crashPrefix, and stops when its stdin reaches EOF (the parent closes
// it, or the parent dies), so that no child outlives its test.

const (
	crashEnvMode    = "SPOOL_CRASH_CHILD"       // block, share or cancel
	crashEnvDB      = "SPOOL_CRASH_DB"          // the database file
	crashEnvWorkers = "SPOOL_CRASH_CONCURRENCY" // Config.Concurrency
	crashEnvCreate  = "SPOOL_CRASH_CREATE"      // tasks the child creates before Start
	crashEnvBeat    = "SPOOL_CRASH_HEARTBEAT"   // HeartbeatInterval, if not crashConfig's
	crashPrefix     = "spool-crash-child: "
	crashKind       = "crashtest"
	crashDeadline   = 30 * time.Second
)

// crashConfig is the configuration of every engine of these tests: short
// intervals so that a dead process is noticed quickly.
func crashConfig(path string) spool.Config {
	return spool.Config{
		Path:              path,
		HeartbeatInterval: 100 * time.Millisecond,
		LeaseDuration:     2 * time.Second,
		PollInterval:      50 * time.Millisecond,
	}
}

// TestCrashChild is the body of a child process. Run directly (without
// SPOOL_CRASH_CHILD) it does nothing and passes.
func TestCrashChild(t *testing.T) {
	mode := os.Getenv(crashEnvMode)
	if mode == "" {
		return
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(os.Stdout, crashPrefix+format+"\n", args...)
	}
	fail := func(format string, args ...any) {
		say("error "+format, args...)
		t.Fatalf(format, args...)
	}
	ctx := context.Background()
	cfg := crashConfig(os.Getenv(crashEnvDB))
	cfg.Concurrency, _ = strconv.Atoi(os.Getenv(crashEnvWorkers))
	if d, err := time.ParseDuration(os.Getenv(crashEnvBeat)); err == nil {
		cfg.HeartbeatInterval, cfg.LeaseDuration = d, 20*d
	}
	pid := os.Getpid()

	var h spool.HandlerFunc
	switch mode {
	case "block": // signal, then hang until killed
		h = func(ctx context.Context, job *spool.Job) error {
			say("started %s %d", job.Task.ID, job.Attempt)
			select {}
		}
	case "share": // record every start, with our pid; see TestCrossProcessShareWork
		h = func(ctx context.Context, job *spool.Job) error {
			say("handled %s %d %d", job.Task.ID, pid, job.Attempt)
			time.Sleep(15 * time.Millisecond)
			return nil
		}
	case "cancel": // wait for the context to end and report why
		h = func(ctx context.Context, job *spool.Job) error {
			say("started %s %d", job.Task.ID, job.Attempt)
			<-ctx.Done()
			cause := context.Cause(ctx)
			say("cause %s %t %q", job.Task.ID, errors.Is(cause, spool.ErrCancelled), fmt.Sprint(cause))
			return cause
		}
	case "files": // write an output file, then hang until killed
		h = func(ctx context.Context, job *spool.Job) error {
			f, err := job.CreateFile(ctx, strings.NewReader("half-done output"), &spool.File{Filename: "out.txt"})
			if err != nil {
				fail("create file: %v", err)
			}
			say("wrote %s %s", job.Task.ID, f.ID)
			select {}
		}
	case "workflow": // a step: start, work a little, write its output; see TestWorkflowCrash
		h = func(ctx context.Context, job *spool.Job) error {
			say("started %s", job.Task.ID)
			time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
			if _, err := job.CreateFile(ctx, strings.NewReader(job.Task.Step), &spool.File{Filename: "out.txt"}); err != nil {
				return err
			}
			say("returning %s", job.Task.ID)
			return nil
		}
	default:
		fail("unknown mode %q", mode)
	}

	e, err := spool.Open(ctx, cfg)
	if err != nil {
		fail("open: %v", err)
	}
	e.Register(crashKind, h)
	if n, _ := strconv.Atoi(os.Getenv(crashEnvCreate)); n > 0 {
		tasks, err := e.CreateMany(ctx, crashRequests(n))
		if err != nil {
			fail("create: %v", err)
		}
		for _, task := range tasks {
			say("created %s", task.ID)
		}
	}
	if err := e.Start(ctx); err != nil {
		fail("start: %v", err)
	}
	say("ready %d", pid)

	io.Copy(io.Discard, os.Stdin) // until the parent lets go
	if mode == "block" || mode == "files" {
		os.Exit(3) // its handlers never return: Close would hang
	}
	cctx, cancel := context.WithTimeout(ctx, crashDeadline)
	defer cancel()
	if err := e.Close(cctx); err != nil {
		fail("close: %v", err)
	}
	say("closed")
}

func crashRequests(n int) []spool.Request {
	reqs := make([]spool.Request, n)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: crashKind, Options: map[string]any{"n": i}}
	}
	return reqs
}

// crashChild is a child process seen from the parent.
type crashChild struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{} // closed once stdout is drained and the process reaped

	mu      sync.Mutex
	lines   []string // lines after crashPrefix
	other   []string // every other stdout line
	stderr  bytes.Buffer
	waitErr error
}

func (c *crashChild) Write(p []byte) (int, error) { // stderr
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.Write(p)
}

// startCrashChild starts a child process on the database db. env adds to
// its environment.
func startCrashChild(t *testing.T, name, mode, db string, workers, create int, env ...string) *crashChild {
	t.Helper()
	c := &crashChild{t: t, name: name, exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	c.cmd.Env = append(os.Environ(),
		crashEnvMode+"="+mode,
		crashEnvDB+"="+db,
		crashEnvWorkers+"="+strconv.Itoa(workers),
		crashEnvCreate+"="+strconv.Itoa(create))
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.Stderr = c
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			if rest, ok := strings.CutPrefix(line, crashPrefix); ok {
				c.lines = append(c.lines, rest)
			} else {
				c.other = append(c.other, line)
			}
			c.mu.Unlock()
		}
		io.Copy(io.Discard, stdout)
		err := c.cmd.Wait()
		c.mu.Lock()
		c.waitErr = err
		c.mu.Unlock()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			c.mu.Lock()
			t.Logf("child %s (pid %d) protocol lines:\n%s\nother stdout:\n%s\nstderr:\n%s", c.name,
				c.cmd.Process.Pid, strings.Join(c.lines, "\n"), strings.Join(c.other, "\n"), c.stderr.String())
			c.mu.Unlock()
		}
	})
	return c
}

// kill SIGKILLs the child (if it still runs) and waits until it is reaped.
func (c *crashChild) kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	c.cmd.Process.Kill()
	<-c.exited
}

// stop closes the child's stdin, which makes it close its engine and exit,
// and waits for it to exit cleanly.
func (c *crashChild) stop() {
	c.t.Helper()
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(crashDeadline):
		c.t.Fatalf("child %s did not exit within %s of its stdin closing", c.name, crashDeadline)
	}
	c.mu.Lock()
	err := c.waitErr
	c.mu.Unlock()
	if err != nil {
		c.t.Fatalf("child %s: %v", c.name, err)
	}
	if len(c.find("closed")) != 1 {
		c.t.Fatalf("child %s exited without closing its engine", c.name)
	}
}

// find returns the fields of the protocol lines whose first word is verb.
func (c *crashChild) find(verb string) [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]string
	for _, l := range c.lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == verb {
			out = append(out, f)
		}
	}
	return out
}

// await waits until ok holds for the child's protocol lines. It fails the
// test if the child exits or reports an error first, or after crashDeadline.
func (c *crashChild) await(what string, ok func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(crashDeadline)
	for !ok() {
		if errs := c.find("error"); len(errs) > 0 {
			c.t.Fatalf("child %s: %s", c.name, strings.Join(errs[0][1:], " "))
		}
		select {
		case <-c.exited:
			if ok() {
				return
			}
			c.t.Fatalf("child %s exited while the test waited for %s", c.name, what)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("child %s: no %s within %s", c.name, what, crashDeadline)
		}
	}
}

// crashOpen opens an engine on db in this process, with h registered for
// crashKind (a pure client still needs it to create tasks of that kind).
func crashOpen(t *testing.T, db string, workers int, h spool.HandlerFunc) (*spool.Engine, *loadLogs) {
	t.Helper()
	logs := &loadLogs{}
	cfg := crashConfig(db)
	cfg.Concurrency = workers
	cfg.Logger = logs.logger()
	e, err := spool.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), crashDeadline)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if h == nil {
		h = func(context.Context, *spool.Job) error {
			return errors.New("a pure client ran a handler")
		}
	}
	e.Register(crashKind, h)
	return e, logs
}

// crashEventTypes returns the types of every stored event, by task, in
// commit order.
func crashEventTypes(t *testing.T, e *spool.Engine) map[string][]spool.EventType {
	t.Helper()
	out := map[string][]spool.EventType{}
	after := ""
	for {
		evs, err := e.Events(context.Background(), after, 1000)
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		for _, ev := range evs {
			out[ev.Task.ID] = append(out[ev.Task.ID], ev.Type)
			after = ev.ID
		}
		if len(evs) < 1000 {
			return out
		}
	}
}

var (
	crashEvCreated    = spool.EventCreated
	crashEvPending    = spool.EventFor(spool.StatusPending)
	crashEvProcessing = spool.EventFor(spool.StatusProcessing)
	crashEvCompleted  = spool.EventFor(spool.StatusCompleted)
	crashEvCancelled  = spool.EventFor(spool.StatusCancelled)
)

// TestCrashKilledMidTask kills a process whose handlers are running and
// checks that a new engine on the same file finishes every task: those
// stored by the parent, those the killed process created itself, and those
// it held, which run again with their killed attempt counted.
func TestCrashKilledMidTask(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "spool.db")
	const workers, fromParent, fromChild = 3, 5, 5

	client, _ := crashOpen(t, db, 0, nil)
	parentTasks, err := client.CreateMany(ctx, crashRequests(fromParent))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := client.Close(ctx); err != nil {
		t.Fatalf("close client: %v", err)
	}

	child := startCrashChild(t, "victim", "block", db, workers, fromChild)
	child.await(fmt.Sprintf("%d started handlers", workers), func() bool {
		return len(child.find("started")) >= workers
	})
	child.kill()

	var ids []string
	for _, task := range parentTasks {
		ids = append(ids, task.ID)
	}
	for _, f := range child.find("created") {
		ids = append(ids, f[1])
	}
	if len(ids) != fromParent+fromChild {
		t.Fatalf("%d tasks known, want %d", len(ids), fromParent+fromChild)
	}
	started := map[string]bool{}
	for _, f := range child.find("started") {
		if f[2] != "1" {
			t.Errorf("task %s started with attempt %s in the victim, want 1", f[1], f[2])
		}
		started[f[1]] = true
	}
	if len(started) != workers {
		t.Fatalf("%d distinct tasks started in the victim, want %d", len(started), workers)
	}

	var mu sync.Mutex
	attempts := map[string][]int{} // task -> attempts handled by the survivor
	e, logs := crashOpen(t, db, 4, func(ctx context.Context, job *spool.Job) error {
		mu.Lock()
		attempts[job.Task.ID] = append(attempts[job.Task.ID], job.Attempt)
		mu.Unlock()
		return job.SetOutput(map[string]string{"by": "survivor"})
	})

	// Before recovery the store shows the victim's work as it left it: the
	// tasks it held (those its handlers ran, and any it claimed ahead of a
	// free worker) processing at attempt 1, the rest pending.
	killed := map[string]bool{}
	for _, id := range ids {
		task, err := e.Get(ctx, id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		switch {
		case task.Status == spool.StatusProcessing && task.Attempt == 1:
			killed[id] = true
		case task.Status == spool.StatusPending && task.Attempt == 0 && !started[id]:
		default:
			t.Errorf("before recovery, task %s is %s at attempt %d (started in the victim: %t)",
				id, task.Status, task.Attempt, started[id])
		}
	}
	for id := range started {
		if !killed[id] {
			t.Errorf("task %s was running in the victim but is not processing after the kill", id)
		}
	}
	t.Logf("killed with %d tasks held (%d running), %d pending", len(killed), len(started), len(ids)-len(killed))

	if err := e.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, crashDeadline)
	defer cancel()
	for _, id := range ids {
		task, err := e.Wait(wctx, id)
		if err != nil {
			st, _ := e.Stats(ctx)
			t.Fatalf("wait %s: %v (stats %+v)", id, err, st)
		}
		if task.Status != spool.StatusCompleted {
			t.Errorf("task %s ended %s (%s), want completed", id, task.Status, task.Error)
		}
		wantAttempt := 1
		if killed[id] {
			wantAttempt = 2 // the killed attempt counts
		}
		if task.Attempt != wantAttempt {
			t.Errorf("task %s finished at attempt %d, want %d", id, task.Attempt, wantAttempt)
		}
		if string(task.Output) != `{"by":"survivor"}` {
			t.Errorf("task %s output %s", id, task.Output)
		}
	}

	mu.Lock()
	for _, id := range ids {
		want := []int{1}
		if killed[id] {
			want = []int{2}
		}
		if got := attempts[id]; !slices.Equal(got, want) {
			t.Errorf("survivor ran task %s with attempts %v, want %v", id, got, want)
		}
	}
	mu.Unlock()

	st, err := e.Stats(ctx)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if st.ByStatus[spool.StatusCompleted] != len(ids) || st.ByStatus[spool.StatusProcessing] != 0 ||
		st.ByStatus[spool.StatusPending] != 0 {
		t.Errorf("stats %v, want all %d completed", st.ByStatus, len(ids))
	}

	events := crashEventTypes(t, e)
	for _, id := range ids {
		want := []spool.EventType{crashEvCreated, crashEvProcessing, crashEvCompleted}
		if killed[id] {
			want = []spool.EventType{crashEvCreated, crashEvProcessing, crashEvPending, crashEvProcessing, crashEvCompleted}
		}
		if got := events[id]; !slices.Equal(got, want) {
			t.Errorf("events of task %s: %v, want %v", id, got, want)
		}
	}
	if errs := logs.errors(); len(errs) > 0 {
		t.Errorf("the survivor logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestCrossProcessShareWork runs two live processes on one file and checks
// that they split the tasks without ever taking one from the other: every
// task is started exactly once, at attempt 1, and both processes work.
//
// Two choices keep it reliable on two cores under -race. The handlers sleep
// 15ms, so that neither process writes back to back: SQLite's write lock is
// not fair, and a process whose writes (claims, heartbeats) keep losing it
// to the other does no work, and is eventually taken for dead. And the
// children heartbeat every second (loadHeartbeat), not every 100ms: see
// loadHeartbeat for what goes wrong at 100ms.
func TestCrossProcessShareWork(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "spool.db")
	const n = 200

	client, _ := crashOpen(t, db, 0, nil) // creates the database; never started
	heartbeat, _ := loadHeartbeat(t, 100*time.Millisecond)
	beat := crashEnvBeat + "=" + heartbeat.String()
	a := startCrashChild(t, "A", "share", db, 4, 0, beat)
	b := startCrashChild(t, "B", "share", db, 4, 0, beat)
	for _, c := range []*crashChild{a, b} {
		c.await("ready", func() bool { return len(c.find("ready")) == 1 })
	}

	var ids []string
	for len(ids) < n {
		tasks, err := client.CreateMany(ctx, crashRequests(min(20, n-len(ids))))
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		for _, task := range tasks {
			ids = append(ids, task.ID)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 2*crashDeadline)
	defer cancel()
	for _, id := range ids {
		task, err := client.Wait(wctx, id)
		if err != nil {
			st, _ := client.Stats(ctx)
			t.Fatalf("wait %s: %v (stats %+v)", id, err, st)
		}
		if task.Status != spool.StatusCompleted || task.Attempt != 1 {
			t.Errorf("task %s ended %s at attempt %d, want completed at attempt 1",
				id, task.Status, task.Attempt)
		}
	}
	a.stop()
	b.stop()

	handled := map[string][]string{} // task -> pids that started it
	perPID := map[string]int{}
	for _, c := range []*crashChild{a, b} {
		for _, f := range c.find("handled") {
			handled[f[1]] = append(handled[f[1]], f[2])
			perPID[f[2]]++
		}
	}
	for _, id := range ids {
		if got := handled[id]; len(got) != 1 {
			t.Errorf("task %s was started by processes %v, want exactly one start", id, got)
		}
	}
	if len(handled) != n {
		t.Errorf("%d distinct tasks handled, want %d", len(handled), n)
	}
	// Both pollers see the tasks within a poll interval of their creation
	// and each task sleeps, so one process cannot drain 200 tasks alone.
	if len(perPID) != 2 {
		t.Errorf("tasks handled per process: %v, want both processes to do some work", perPID)
	}
	t.Logf("tasks handled per process: %v", perPID)

	insts, err := client.Store().Instances(ctx)
	if err != nil {
		t.Fatalf("instances: %v", err)
	}
	if len(insts) != 0 {
		t.Errorf("%d instances left registered after both processes closed cleanly", len(insts))
	}
}

// TestCrossProcessCancel cancels, from a pure client in this process, a
// task that a handler in another process is running.
func TestCrossProcessCancel(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "spool.db")

	client, _ := crashOpen(t, db, 0, nil)
	worker := startCrashChild(t, "worker", "cancel", db, 2, 0)
	worker.await("ready", func() bool { return len(worker.find("ready")) == 1 })

	task, err := client.Create(ctx, spool.Request{Kind: crashKind})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	worker.await("the handler to start", func() bool { return len(worker.find("started")) == 1 })
	got, err := client.Cancel(ctx, task.ID)
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if got.Status != spool.StatusCancelled {
		t.Fatalf("cancel returned a %s task", got.Status)
	}
	worker.await("the handler to see its context end", func() bool { return len(worker.find("cause")) == 1 })
	cause := worker.find("cause")[0]
	if cause[1] != task.ID || cause[2] != "true" {
		t.Errorf("the handler's context ended with cause %s (errors.Is ErrCancelled: %s), want %q",
			strings.Join(cause[3:], " "), cause[2], spool.ErrCancelled)
	}
	worker.stop() // the handler has returned its error by now

	if n := len(worker.find("started")); n != 1 {
		t.Errorf("the task was started %d times, want 1", n)
	}
	final, err := client.Get(ctx, task.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if final.Status != spool.StatusCancelled || final.Attempt != 1 {
		t.Errorf("after the handler returned, the task is %s at attempt %d, want cancelled at attempt 1",
			final.Status, final.Attempt)
	}
	want := []spool.EventType{crashEvCreated, crashEvProcessing, crashEvCancelled}
	if got := crashEventTypes(t, client)[task.ID]; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}
