package spool

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// While the sender is busy, the dispatcher makes no deliveries: a burst of
// tasks then writes no delivery rows that could not be sent yet. Once the
// endpoint answers, every event is delivered all the same, each task's in
// order.
func TestWebhookDispatchWaitsForBusySender(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	got := map[string][]EventType{} // task id -> event types, as received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Type EventType `json:"type"`
			Data Task      `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		mu.Lock()
		got[env.Data.ID] = append(got[env.Data.ID], env.Type)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	ctx := context.Background()
	e, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "spool.db"), AllowPrivateNetworks: true,
		PollInterval: 20 * time.Millisecond,
		Webhooks:     WebhookConfig{Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Concurrency: 1, Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	e.Register("x", HandlerFunc(func(context.Context, *Job) error { return nil }))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	create := func() *Task {
		t.Helper()
		task, err := e.Create(ctx, Request{Kind: "x", WebhookURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		return task
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	// One slot, held by the first delivery; one more claimed behind it:
	// the sender has all it can take.
	var tasks []*Task
	for range 3 {
		tasks = append(tasks, create())
	}
	waitFor("a busy sender", e.hooks.busy.Load)

	burst := make([]*Task, 50)
	for i := range burst {
		burst[i] = create()
	}
	for _, b := range burst {
		waitFor("the burst to complete", func() bool {
			task, err := e.Get(ctx, b.ID)
			return err == nil && task.Status == StatusCompleted
		})
	}
	time.Sleep(100 * time.Millisecond) // several dispatch rounds
	for _, b := range burst {
		if ds, err := e.Deliveries(ctx, b.ID); err != nil || len(ds) > 0 {
			t.Fatalf("task %s of the burst has %d deliveries (%v) while the sender is busy, want none yet", b.ID, len(ds), err)
		}
	}

	close(release)
	tasks = append(tasks, burst...)
	waitFor("every delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, types := range got {
			n += len(types)
		}
		return n == 3*len(tasks)
	})
	mu.Lock()
	defer mu.Unlock()
	want := []EventType{EventCreated, "task.processing", "task.completed"}
	for _, task := range tasks {
		if g := got[task.ID]; len(g) != 3 || g[0] != want[0] || g[1] != want[1] || g[2] != want[2] {
			t.Errorf("task %s: deliveries %v, want %v in order", task.ID, g, want)
		}
	}
}

// heldReceiver holds every request until released, counting those in
// flight, the most at once, and those answered.
type heldReceiver struct {
	mu                       sync.Mutex
	inFlight, most, received int
	hold                     chan struct{}
	once                     sync.Once
}

func (h *heldReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.inFlight++
	h.most = max(h.most, h.inFlight)
	h.mu.Unlock()
	select {
	case <-h.hold:
	case <-r.Context().Done():
	}
	h.mu.Lock()
	h.inFlight--
	h.received++
	h.mu.Unlock()
}

func (h *heldReceiver) release() { h.once.Do(func() { close(h.hold) }) }

// counts returns the requests in flight, the most at once, and those
// answered.
func (h *heldReceiver) counts() (inFlight, most, received int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inFlight, h.most, h.received
}

// yieldEngine opens an engine with one worker and 8 webhook attempts at
// once, a held receiver, and a gate that the "x" and "long" handlers
// wait on. Both are let go before the engine closes.
func yieldEngine(t *testing.T, cfg Config) (e *Engine, rc *heldReceiver, url string, working chan struct{}) {
	t.Helper()
	rc = &heldReceiver{hold: make(chan struct{})}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	cfg.Path, cfg.AllowPrivateNetworks = filepath.Join(t.TempDir(), "spool.db"), true
	cfg.Concurrency, cfg.PollInterval = 1, 20*time.Millisecond
	cfg.Webhooks = WebhookConfig{Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Concurrency: 8,
		Timeout: time.Minute}
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	working = make(chan struct{})
	t.Cleanup(func() { // before Close: nothing holds it up
		rc.release()
		select {
		case <-working: // the test closed it
		default:
			close(working)
		}
	})
	return e, rc, srv.URL, working
}

// waitUntil polls ok until it holds, or fails the test after 30 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// While tasks wait for the engine's workers, the sender makes a quarter
// of Webhooks.Concurrency attempts at once; once the queue drains, all of
// them.
func TestWebhookYieldsToTasks(t *testing.T) {
	ctx := context.Background()
	e, rc, url, working := yieldEngine(t, Config{})
	e.Register("x", HandlerFunc(func(ctx context.Context, _ *Job) error {
		select {
		case <-working:
		case <-ctx.Done():
		}
		return nil
	}))
	const n = 20
	for range n {
		if _, err := e.Create(ctx, Request{Kind: "x", WebhookURL: url}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// The one worker is taken and 19 tasks wait: 2 attempts at once.
	waitUntil(t, "two attempts at once", func() bool { in, _, _ := rc.counts(); return in >= 2 })
	time.Sleep(10 * e.cfg.PollInterval) // time for the sender to start more, if it would
	if _, most, _ := rc.counts(); most != 2 {
		t.Errorf("while tasks waited, %d attempts were made at once; want 2 (a quarter of 8)", most)
	}

	// The queue drains: all 8.
	close(working)
	waitUntil(t, "every task to finish", func() bool {
		page, err := e.List(ctx, &ListParams{Status: StatusCompleted, Limit: n})
		return err == nil && len(page.Tasks) == n
	})
	waitUntil(t, "eight attempts at once", func() bool { in, _, _ := rc.counts(); return in == 8 })
	rc.release()
	waitUntil(t, "every delivery", func() bool { _, _, got := rc.counts(); return got == 3*n })
}

// Every worker taken with no task waiting is not a reason to yield: a
// long task on the one worker leaves the sender all its attempts.
func TestWebhookDoesNotYieldToNothing(t *testing.T) {
	ctx := context.Background()
	e, rc, url, working := yieldEngine(t, Config{AcceptUnavailableKinds: true})
	started := make(chan struct{})
	e.Register("long", HandlerFunc(func(ctx context.Context, _ *Job) error {
		close(started)
		select {
		case <-working:
		case <-ctx.Done():
		}
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Create(ctx, Request{Kind: "long"}); err != nil {
		t.Fatal(err)
	}
	<-started
	// Tasks of a kind this engine does not run (no video handler here):
	// their events need sending, and none waits for this engine's worker.
	in, err := e.CreateFile(ctx, strings.NewReader("not really a video"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := e.Create(ctx, Request{Kind: "video", FileID: in.ID, WebhookURL: url}); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n, _, _ := rc.counts()
		if n == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts at once while the one worker ran a task and none waited; want 8", n)
		}
	}
}
