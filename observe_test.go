package spool_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// tally is an Observer that counts what it is told.
type tally struct {
	mu        sync.Mutex
	created   map[string]int
	done      map[spool.Status]int
	cancelled map[string]int
	commits   int
	writes    int
	hooks     map[spool.DeliveryState]int
}

func newTally() *tally {
	return &tally{created: map[string]int{}, done: map[spool.Status]int{}, cancelled: map[string]int{},
		hooks: map[spool.DeliveryState]int{}}
}

func (c *tally) observer() *spool.Observer {
	return &spool.Observer{
		TasksCreated: func(kind string) { c.mu.Lock(); c.created[kind]++; c.mu.Unlock() },
		HandlerDone: func(kind string, to spool.Status, took time.Duration) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if took <= 0 {
				to = "bad duration"
			}
			c.done[to]++
		},
		TaskCancelled: func(kind string) { c.mu.Lock(); c.cancelled[kind]++; c.mu.Unlock() },
		Committed: func(writes int, took time.Duration) {
			c.mu.Lock()
			c.commits++
			c.writes += writes
			c.mu.Unlock()
		},
		WebhookAttempted: func(s spool.DeliveryState, took time.Duration) { c.mu.Lock(); c.hooks[s]++; c.mu.Unlock() },
	}
}

func (c *tally) get(f func(*tally) int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f(c)
}

// TestObserver checks that an Observer hears of creates, each handler
// outcome, cancels, the writer's commits and webhook attempts.
func TestObserver(t *testing.T) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(recv.Close)
	cfg := hookConfig(filepath.Join(t.TempDir(), "spool.db"))
	cfg.Backoff = func(int) time.Duration { return time.Millisecond }
	e := openFile(t, cfg)
	c := newTally()
	e.Observe(c.observer())
	e.Observe(nil) // ignored
	tries := 0
	e.Register("obs", spool.HandlerFunc(func(ctx context.Context, j *spool.Job) error {
		time.Sleep(time.Millisecond)
		switch j.Task.Options["do"] {
		case "fail":
			return spool.Permanent(errors.New("no"))
		case "retry":
			if tries++; tries == 1 {
				return errors.New("again")
			}
		case "block":
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}))
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, do := range []string{"ok", "fail", "retry"} {
		task, err := e.Create(ctx, spool.Request{Kind: "obs", Options: map[string]any{"do": do}, WebhookURL: recv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Wait(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
	}
	blocked, err := e.Create(ctx, spool.Request{Kind: "obs", Options: map[string]any{"do": "block"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		got, err := e.Get(ctx, blocked.ID)
		return err == nil && got.Status == spool.StatusProcessing
	})
	if _, err := e.Cancel(ctx, blocked.ID); err != nil {
		t.Fatal(err)
	}

	if got := c.get(func(c *tally) int { return c.created["obs"] }); got != 4 {
		t.Errorf("TasksCreated: %d obs tasks, want 4", got)
	}
	for to, want := range map[spool.Status]int{spool.StatusCompleted: 2, spool.StatusFailed: 1, spool.StatusWaiting: 1} {
		if got := c.get(func(c *tally) int { return c.done[to] }); got != want {
			t.Errorf("HandlerDone: %d runs to %s, want %d (all: %v)", got, to, want, c.done)
		}
	}
	if got := c.get(func(c *tally) int { return c.cancelled["obs"] }); got != 1 {
		t.Errorf("TaskCancelled: %d, want 1", got)
	}
	if got := c.get(func(c *tally) int { return c.commits }); got == 0 || c.get(func(c *tally) int { return c.writes }) < got {
		t.Errorf("Committed: %d commits of %d writes", got, c.writes)
	}
	// 3 tasks with a webhook_url, each created, processing, and ended
	// (the retried one twice more: waiting, processing).
	deadline := time.Now().Add(30 * time.Second)
	for c.get(func(c *tally) int { return c.hooks[spool.DeliveryDelivered] }) < 11 {
		if time.Now().After(deadline) {
			t.Fatalf("WebhookAttempted: %v, want 11 delivered", c.hooks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
