// Package spooltest helps test code that uses spool: it runs a real engine
// on a private in-memory database, so that handlers can be tested end to
// end with no network and no files, and it holds the conformance suites
// that every Store and Storage implementation must pass.
package spooltest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// New opens and starts an engine on a private in-memory database with the
// given handlers registered, and closes it when the test ends. cfg may be
// nil; its Path is ignored. Tests get short intervals by default so that
// retries and polling do not slow them down, and the engine logs to the
// test's log unless cfg.Logger is set.
func New(t testing.TB, cfg *spool.Config, handlers map[string]spool.Handler) *spool.Engine {
	t.Helper()
	var c spool.Config
	if cfg != nil {
		c = *cfg
	}
	c.Path = ":memory:"
	if c.Backoff == nil {
		c.Backoff = func(int) time.Duration { return time.Millisecond }
	}
	if c.PollInterval == 0 {
		c.PollInterval = 20 * time.Millisecond
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Millisecond
	}
	var logs *testLog
	if c.Logger == nil {
		logs = &testLog{t: t}
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	ctx := context.Background()
	e, err := spool.Open(ctx, c)
	if err != nil {
		t.Fatalf("spooltest: open engine: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("spooltest: close engine: %v", err)
		}
		if logs != nil {
			logs.close()
		}
	})
	for kind, h := range handlers {
		if err := e.TryRegister(kind, h); err != nil {
			t.Fatalf("spooltest: %v", err)
		}
	}
	if err := e.Start(ctx); err != nil {
		t.Fatalf("spooltest: start engine: %v", err)
	}
	return e
}

// Run creates a task from req on a fresh engine that has h registered for
// req.Kind, waits for it to finish, and returns it. It fails the test if
// the task cannot be created or does not finish within 30 seconds.
func Run(t testing.TB, h spool.Handler, req spool.Request) *spool.Task {
	t.Helper()
	e := New(t, nil, map[string]spool.Handler{req.Kind: h})
	return CreateAndWait(t, e, req)
}

// CreateAndWait creates a task on e and waits up to 30 seconds for it to
// finish.
func CreateAndWait(t testing.TB, e *spool.Engine, req spool.Request) *spool.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	task, err := e.Create(ctx, req)
	if err != nil {
		t.Fatalf("spooltest: create: %v", err)
	}
	done, err := e.Wait(ctx, task.ID)
	if err != nil {
		t.Fatalf("spooltest: wait for %s: %v", task.ID, err)
	}
	return done
}

// testLog sends the engine's logs to the test's log, shown with -v or when
// the test fails, until the engine is closed.
type testLog struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}
