package spool_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// failUntil is a receiver that answers 503 while failing is set.
func failUntil(failing *atomic.Bool) *receiver {
	return &receiver{answer: func(n int, w http.ResponseWriter, r *http.Request) int {
		if failing.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}}
}

// slowSchedule retries every 200ms, long enough not to run out while a test
// stops and restarts engines.
func slowSchedule() []time.Duration {
	s := make([]time.Duration, 100)
	for i := range s {
		s[i] = 200 * time.Millisecond
	}
	return s
}

// checkDeliveredOnce checks that every delivery of tasks ended delivered
// with exactly one successful attempt, and that the receiver got each
// webhook-id answered with success exactly once.
func checkDeliveredOnce(t *testing.T, e *spool.Engine, rc *receiver, ids []string) {
	t.Helper()
	all := map[string][]*spool.Delivery{}
	for _, id := range ids {
		all[id] = awaitDeliveries(t, e, id, "every delivery delivered", allEnded(3))
	}
	okByID := map[string]int{}
	for _, h := range rc.snapshot() {
		if h.err != nil {
			t.Fatalf("a request does not verify: %v", h.err)
		}
		if h.status == http.StatusOK {
			okByID[h.id]++
		}
	}
	for _, id := range ids {
		ds := all[id]
		for _, d := range ds {
			ok := 0
			for _, a := range d.Attempts {
				if a.StatusCode == http.StatusOK {
					ok++
				}
			}
			if d.State != spool.DeliveryDelivered || ok != 1 || okByID[d.ID] != 1 {
				t.Fatalf("delivery %s: %d successes recorded, %d received:\n%s", d.ID, ok, okByID[d.ID], describeDeliveries(ds))
			}
		}
	}
}

// TestWebhookSurvivesClose is acceptance 3 with a clean Close: deliveries
// pending at Close are delivered by the next engine, none twice.
func TestWebhookSurvivesClose(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	rc := failUntil(&failing)
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "spool.db")
	cfg := hookConfig(path)
	cfg.Webhooks.Schedule = slowSchedule()
	e := startHooks(t, cfg)
	ctx := ctxT(t)
	var ids []string
	for range 20 {
		task, err := e.Create(ctx, spool.Request{Kind: hookKind, WebhookURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	for _, id := range ids {
		awaitDeliveries(t, e, id, "a failed attempt", func(ds []*spool.Delivery) bool {
			return len(ds) == 3 && ds[0].Attempted > 0
		})
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	failing.Store(false)
	checkDeliveredOnce(t, startHooks(t, cfg), rc, ids)
}

const (
	hookChildDB  = "SPOOL_WEBHOOK_CHILD_DB"
	hookChildURL = "SPOOL_WEBHOOK_CHILD_URL"
)

// TestWebhookCrashChild is the child of TestWebhookSurvivesKill: it creates
// tasks with a webhook_url, says so, and runs until killed (or its stdin
// ends). Run directly it does nothing.
func TestWebhookCrashChild(t *testing.T) {
	db := os.Getenv(hookChildDB)
	if db == "" {
		return
	}
	cfg := hookConfig(db)
	cfg.Webhooks.Schedule = slowSchedule()
	e := startHooks(t, cfg)
	var ids []string
	for range 20 {
		task, err := e.Create(context.Background(), spool.Request{Kind: hookKind, WebhookURL: os.Getenv(hookChildURL)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	fmt.Println("tasks " + strings.Join(ids, " "))
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent goes
}

// TestWebhookSurvivesKill is acceptance 3 with SIGKILL: an engine killed
// while its deliveries fail and retry leaves them to the next engine,
// which delivers each once.
func TestWebhookSurvivesKill(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	rc := failUntil(&failing)
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "spool.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestWebhookCrashChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), hookChildDB+"="+path, hookChildURL+"="+srv.URL)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	var ids []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "tasks "); ok {
			ids = strings.Fields(rest)
			break
		}
	}
	if len(ids) != 20 {
		t.Fatalf("child reported %d tasks", len(ids))
	}
	go func() {
		for sc.Scan() { // drain
		}
	}()
	// A pure client on the same file watches the child's attempts.
	cfg := hookConfig(path)
	watch := openFile(t, cfg)
	for _, id := range ids {
		awaitDeliveries(t, watch, id, "a failed attempt", func(ds []*spool.Delivery) bool {
			return len(ds) == 3 && ds[0].Attempted > 0
		})
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	failing.Store(false)
	cfg.Webhooks.Schedule = slowSchedule()
	checkDeliveredOnce(t, startHooks(t, cfg), rc, ids)
}

// TestWebhookOrderPerTask is acceptance 6: under concurrency (1,000 tasks,
// 8 workers, a receiver that takes random short times), each task's
// events arrive in event order: no task.completed before its
// task.processing.
func TestWebhookOrderPerTask(t *testing.T) {
	// The receiver takes a random time before it records a request, so
	// two requests of one task in flight at once would often be recorded
	// out of order. It refuses everything until every task has completed,
	// so that each task's deliveries are all waiting at once, their
	// retries due at jittered times.
	var failing atomic.Bool
	failing.Store(true)
	rc := failUntil(&failing)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		rc.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := hookConfig("")
	cfg.Concurrency = 8
	cfg.Webhooks.Schedule = slowSchedule()
	e := startHooks(t, cfg)
	ctx := ctxT(t)
	reqs := make([]spool.Request, 1000)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: hookKind, WebhookURL: srv.URL}
	}
	tasks, err := e.CreateMany(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if _, err := e.Wait(ctx, tk.ID); err != nil {
			t.Fatal(err)
		}
	}
	failing.Store(false)
	for _, tk := range tasks {
		awaitDeliveries(t, e, tk.ID, "deliveries ended", allEnded(3))
	}
	ids := map[string][]string{}
	types := map[string][]spool.EventType{}
	for _, h := range rc.snapshot() { // in the order they were recorded
		if h.status != http.StatusOK {
			continue
		}
		var env envelope
		if err := json.Unmarshal(h.body, &env); err != nil || h.err != nil {
			t.Fatalf("request %s: %v %v", h.body, err, h.err)
		}
		ids[env.Data.ID] = append(ids[env.Data.ID], h.id)
		types[env.Data.ID] = append(types[env.Data.ID], env.Type)
	}
	want := []spool.EventType{spool.EventCreated, spool.EventFor(spool.StatusProcessing), spool.EventFor(spool.StatusCompleted)}
	for _, tk := range tasks {
		if !slices.Equal(types[tk.ID], want) || !slices.IsSorted(ids[tk.ID]) {
			t.Fatalf("task %s: received %v (%v), want %v in event order", tk.ID, types[tk.ID], ids[tk.ID], want)
		}
	}
}

// TestWebhookTwoEngines: two engines on one database, both sending, never
// attempt one delivery twice: each is tried once and received once.
func TestWebhookTwoEngines(t *testing.T) {
	rc := &receiver{answer: func(n int, w http.ResponseWriter, r *http.Request) int {
		time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
		return http.StatusOK
	}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "spool.db")
	a, b := startHooks(t, hookConfig(path)), startHooks(t, hookConfig(path))
	ctx := ctxT(t)
	var ids []string
	for i := range 200 {
		e := a
		if i%2 == 1 {
			e = b
		}
		task, err := e.Create(ctx, spool.Request{Kind: hookKind, WebhookURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	for _, id := range ids {
		ds := awaitDeliveries(t, a, id, "deliveries ended", allEnded(3))
		for _, d := range ds {
			if d.State != spool.DeliveryDelivered || len(d.Attempts) != 1 {
				t.Fatalf("task %s:\n%s", id, describeDeliveries(ds))
			}
		}
	}
	seen := map[string]int{}
	for _, h := range rc.snapshot() {
		seen[h.id]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s received %d times", id, n)
		}
	}
	if len(seen) != 3*len(ids) {
		t.Errorf("received %d deliveries, want %d", len(seen), 3*len(ids))
	}
}

// TestWebhookProgress: progress events are sent only with
// WebhookConfig.Progress.
func TestWebhookProgress(t *testing.T) {
	for _, on := range []bool{false, true} {
		rc := &receiver{}
		srv := httptest.NewServer(rc)
		t.Cleanup(srv.Close)
		cfg := hookConfig("")
		cfg.Webhooks.Progress = on
		cfg.ProgressInterval = time.Millisecond
		e := openFile(t, cfg)
		step := make(chan struct{})
		e.Register(hookKind, spool.HandlerFunc(func(ctx context.Context, j *spool.Job) error {
			j.Progress(50)
			<-step // the progress event is dispatched before the completion
			return nil
		}))
		if err := e.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		task, err := e.Create(ctxT(t), spool.Request{Kind: hookKind, WebhookURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		want := 2 // created, processing
		if on {
			want = 3
		}
		awaitDeliveries(t, e, task.ID, "deliveries before completion", allEnded(want))
		time.Sleep(50 * time.Millisecond) // time for a progress event to be dispatched, if it were
		close(step)
		ds := awaitDeliveries(t, e, task.ID, "deliveries ended", allEnded(want+1))
		progress := 0
		for _, d := range ds {
			if d.Type == spool.EventProgress {
				progress++
				if d.Task.Progress != 50 {
					t.Errorf("progress delivery shows %d%%", d.Task.Progress)
				}
			}
		}
		if len(ds) != want+1 || progress != want-2 {
			t.Errorf("Progress=%v:\n%s", on, describeDeliveries(ds))
		}
	}
}
