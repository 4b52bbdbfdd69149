package spool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/spooltest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openFile opens an engine on a file database in a temporary directory.
func openFile(t *testing.T, cfg spool.Config) *spool.Engine {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "spool.db")
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return time.Millisecond }
	}
	e, err := spool.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

var idPattern = regexp.MustCompile(`^task_[0-7][0-9A-HJKMNP-TV-Z]{25}$`)

func TestCreateGetRoundTrip(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{})
	in, err := e.CreateFile(ctx, bytes.NewReader(pngBytes(t, 640, 480)), &spool.FileParams{Filename: "in.png", Ref: "original"})
	if err != nil {
		t.Fatal(err)
	}
	var req spool.Request
	body := `{"file_id": "` + in.ID + `", "kind": "image", "width": 320, "format": "png", "ref": "thumbnail"}`
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	created, err := e.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Get(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if !idPattern.MatchString(m["id"].(string)) {
		t.Errorf("id %q does not match %s", m["id"], idPattern)
	}
	want := map[string]any{"object": "task", "kind": "image", "status": "pending", "progress": float64(0),
		"output": nil, "error": nil, "parent_id": nil, "results": nil}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	opts := m["options"].(map[string]any)
	if opts["width"] != float64(320) || opts["format"] != "png" || opts["ref"] != "thumbnail" {
		t.Errorf("options = %v, want width, format and ref echoed", opts)
	}
	if wf, ok := m["workflow"].([]any); !ok || len(wf) != 0 {
		t.Errorf("workflow = %#v, want []", m["workflow"])
	}
	for _, k := range []string{"created", "updated"} {
		s, _ := m[k].(string)
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || ts.Location() != time.UTC || s[len(s)-1] != 'Z' {
			t.Errorf("%s = %q, want an RFC 3339 UTC time", k, s)
		}
	}
	for _, k := range []string{"id", "object", "kind", "input", "options", "output", "status", "progress",
		"error", "created", "updated", "parent_id", "workflow", "results"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	// The JSON decodes back to the same task.
	var back spool.Task
	if err := json.Unmarshal(b, &back); err != nil || back.ID != got.ID || back.Status != got.Status || !back.Created.Equal(got.Created) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{})
	e.Register("x", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	a, err := e.Create(ctx, spool.Request{Kind: "x", IdempotencyKey: "order-42"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Create(ctx, spool.Request{Kind: "x", IdempotencyKey: "order-42"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID {
		t.Errorf("same idempotency key gave %s and %s", a.ID, b.ID)
	}
	st, _ := e.Stats(ctx)
	if st.ByStatus[spool.StatusPending] != 1 {
		t.Errorf("%d pending tasks, want 1", st.ByStatus[spool.StatusPending])
	}
}

func TestRunAtWaits(t *testing.T) {
	ctx := ctxT(t)
	var ran atomic.Int32
	e := spooltest.New(t, nil, map[string]spool.Handler{"x": spool.HandlerFunc(func(context.Context, *spool.Job) error {
		ran.Add(1)
		return nil
	})})
	later, err := e.Create(ctx, spool.Request{Kind: "x", RunAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	soon, err := e.Create(ctx, spool.Request{Kind: "x", RunAt: time.Now().Add(50 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if later.Status != spool.StatusWaiting || soon.Status != spool.StatusWaiting {
		t.Errorf("statuses %s, %s; want waiting", later.Status, soon.Status)
	}
	if got, err := e.Wait(ctx, soon.ID); err != nil || got.Status != spool.StatusCompleted {
		t.Fatalf("the task due soon: %v, %v", got, err)
	}
	got, _ := e.Get(ctx, later.ID)
	if got.Status != spool.StatusWaiting {
		t.Errorf("the task due in an hour is %s, want waiting", got.Status)
	}
	// Its JSON says when it runs; a task without run_at has none.
	b, _ := json.Marshal(got)
	var back spool.Task
	if err := json.Unmarshal(b, &back); err != nil || !strings.Contains(string(b), `"run_at":"`) ||
		!back.RunAt.Equal(later.RunAt) || later.RunAt.IsZero() {
		t.Errorf("JSON of a task due later: %s (decoded run_at %v, want %v; %v)", b, back.RunAt, later.RunAt, err)
	}
	if b, _ := json.Marshal(soon); strings.Contains(string(b), "run_at") != !soon.RunAt.IsZero() {
		t.Errorf("run_at in %s", b)
	}
	if ran.Load() != 1 {
		t.Errorf("%d handler runs, want 1", ran.Load())
	}
}

// TestConcurrencyLimits runs 1,000 tasks of three kinds with Concurrency 4
// and one kind limited to 1, and checks that neither limit is ever exceeded.
func TestConcurrencyLimits(t *testing.T) {
	ctx := ctxT(t)
	var mu sync.Mutex
	running, peak := map[string]int{}, map[string]int{}
	total, peakTotal := 0, 0
	h := spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		k := job.Task.Kind
		mu.Lock()
		running[k]++
		total++
		peak[k] = max(peak[k], running[k])
		peakTotal = max(peakTotal, total)
		mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		mu.Lock()
		running[k]--
		total--
		mu.Unlock()
		return nil
	})
	e := openFile(t, spool.Config{Concurrency: 4, KindConcurrency: map[string]int{"slow": 1}})
	for _, k := range []string{"slow", "a", "b"} {
		e.Register(k, h)
	}
	reqs := make([]spool.Request, 1000)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: []string{"slow", "a", "b"}[i%3]}
	}
	tasks, err := e.CreateMany(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		got, err := e.Wait(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != spool.StatusCompleted {
			t.Fatalf("task %s is %s", got.ID, got.Status)
		}
	}
	if peakTotal > 4 || peak["slow"] > 1 {
		t.Errorf("peak concurrency %d (limit 4), slow kind %d (limit 1)", peakTotal, peak["slow"])
	}
	if peakTotal < 2 {
		t.Errorf("peak concurrency %d: tasks did not run in parallel", peakTotal)
	}
}

func TestRetries(t *testing.T) {
	var calls sync.Map
	count := func(id string) int {
		v, _ := calls.LoadOrStore(id, new(atomic.Int32))
		return int(v.(*atomic.Int32).Add(1))
	}
	handlers := map[string]spool.Handler{
		"flaky": spool.HandlerFunc(func(_ context.Context, job *spool.Job) error {
			if n := count(job.Task.ID); n < 3 {
				return fmt.Errorf("flake %d", n)
			}
			if job.Attempt != 3 {
				return spool.Permanent(fmt.Errorf("attempt %d, want 3", job.Attempt))
			}
			return job.SetOutput("ok")
		}),
		"bad": spool.HandlerFunc(func(_ context.Context, job *spool.Job) error {
			count(job.Task.ID)
			return spool.Permanent(errors.New("unsupported format"))
		}),
		"down": spool.HandlerFunc(func(_ context.Context, job *spool.Job) error {
			count(job.Task.ID)
			return errors.New("dependency down")
		}),
		"panic": spool.HandlerFunc(func(_ context.Context, job *spool.Job) error {
			count(job.Task.ID)
			panic("handler bug")
		}),
		"slow": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
			<-ctx.Done()
			return context.Cause(ctx)
		}),
	}
	e := spooltest.New(t, &spool.Config{MaxAttempts: 3, KindTimeout: map[string]time.Duration{"slow": 20 * time.Millisecond}}, handlers)
	tests := []struct {
		kind     string
		status   spool.Status
		attempts int
		errMatch string
	}{
		{"flaky", spool.StatusCompleted, 3, ""},
		{"bad", spool.StatusFailed, 1, "unsupported format"},
		{"down", spool.StatusError, 3, "dependency down"},
		{"panic", spool.StatusError, 3, "panicked: handler bug"},
		{"slow", spool.StatusError, 3, "timed out after 20ms"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			got := spooltest.CreateAndWait(t, e, spool.Request{Kind: tt.kind})
			if got.Status != tt.status || got.Attempt != tt.attempts {
				t.Errorf("%s: %s after %d attempts (%q), want %s after %d", tt.kind, got.Status, got.Attempt, got.Error, tt.status, tt.attempts)
			}
			if !regexp.MustCompile(regexp.QuoteMeta(tt.errMatch)).MatchString(got.Error) {
				t.Errorf("%s: error %q, want it to contain %q", tt.kind, got.Error, tt.errMatch)
			}
			if tt.kind == "flaky" && string(got.Output) != `"ok"` {
				t.Errorf("output %s", got.Output)
			}
		})
	}
}

// TestShutdownKeepsAttempt closes the engine while a handler runs past the
// grace period: the task goes back to pending with its attempt given back,
// and the next engine on the file completes it on attempt 1.
func TestShutdownKeepsAttempt(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	started := make(chan struct{})
	var cause atomic.Value
	e1, err := spool.Open(ctx, spool.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	e1.Register("x", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		close(started)
		<-ctx.Done()
		cause.Store(context.Cause(ctx))
		return ctx.Err()
	}))
	if err := e1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tk, err := e1.Create(ctx, spool.Request{Kind: "x"})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	grace, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := e1.Close(grace); err != nil {
		t.Fatal(err)
	}
	if c, _ := cause.Load().(error); !errors.Is(c, spool.ErrShutdown) {
		t.Errorf("handler's context cause = %v, want ErrShutdown", c)
	}
	e2 := openFile(t, spool.Config{Path: path})
	got, err := e2.Get(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != spool.StatusPending || got.Attempt != 0 {
		t.Errorf("after shutdown the task is %s with %d attempts, want pending with 0", got.Status, got.Attempt)
	}
	var attempt atomic.Int32
	e2.Register("x", spool.HandlerFunc(func(_ context.Context, job *spool.Job) error {
		attempt.Store(int32(job.Attempt))
		return nil
	}))
	if err := e2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := e2.Wait(ctx, tk.ID); err != nil || got.Status != spool.StatusCompleted || attempt.Load() != 1 {
		t.Errorf("after restart: %v %v, attempt %d; want completed on attempt 1", got, err, attempt.Load())
	}
}

// TestGracefulClose lets a running handler finish within the grace period.
func TestGracefulClose(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	e, err := spool.Open(ctx, spool.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	e.Register("x", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		close(started)
		time.Sleep(50 * time.Millisecond)
		return ctx.Err()
	}))
	e.Start(ctx)
	tk, _ := e.Create(ctx, spool.Request{Kind: "x"})
	<-started
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := openFile(t, spool.Config{Path: path})
	if got, _ := e2.Get(ctx, tk.ID); got.Status != spool.StatusCompleted {
		t.Errorf("task is %s after a graceful close, want completed", got.Status)
	}
	if _, err := e.Create(ctx, spool.Request{Kind: "x"}); !errors.Is(err, spool.ErrClosed) {
		t.Errorf("Create after Close = %v, want ErrClosed", err)
	}
}

func TestCancel(t *testing.T) {
	ctx := ctxT(t)
	started := make(chan struct{})
	var cause atomic.Value
	e := spooltest.New(t, nil, map[string]spool.Handler{
		"block": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
			close(started)
			<-ctx.Done()
			cause.Store(context.Cause(ctx))
			return nil // returning nil after a cancel must not complete the task
		}),
	})
	pending, err := e.Create(ctx, spool.Request{Kind: "block", RunAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.Cancel(ctx, pending.ID); err != nil || got.Status != spool.StatusCancelled {
		t.Fatalf("cancel a waiting task: %v, %v", got, err)
	}
	running, _ := e.Create(ctx, spool.Request{Kind: "block"})
	<-started
	if _, err := e.Cancel(ctx, running.ID); err != nil {
		t.Fatal(err)
	}
	got, err := e.Wait(ctx, running.ID)
	if err != nil || got.Status != spool.StatusCancelled {
		t.Fatalf("running task after cancel: %v, %v", got, err)
	}
	// Give the handler's return a chance to (wrongly) complete the task.
	deadline := time.Now().Add(5 * time.Second)
	for cause.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if c, _ := cause.Load().(error); !errors.Is(c, spool.ErrCancelled) {
		t.Errorf("handler's context cause = %v, want ErrCancelled", c)
	}
	time.Sleep(20 * time.Millisecond)
	if got, _ := e.Get(ctx, running.ID); got.Status != spool.StatusCancelled {
		t.Errorf("handler returning nil after cancel turned the task %s", got.Status)
	}
	_, err = e.Cancel(ctx, running.ID)
	if !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("cancelling a finished task = %v, want ErrInvalidTransition", err)
	}
	if _, err := e.Cancel(ctx, "task_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A"); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("cancelling an unknown task = %v, want ErrNotFound", err)
	}
}

func TestProgressNeverBackwards(t *testing.T) {
	ctx := ctxT(t)
	e := spooltest.New(t, &spool.Config{ProgressInterval: 5 * time.Millisecond}, map[string]spool.Handler{
		"p": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
			for i := 0; i <= 100000; i++ {
				job.Progress(i / 2000) // a tight loop: must be coalesced
			}
			job.Progress(-5)
			time.Sleep(20 * time.Millisecond)
			job.Progress(30) // backwards: ignored
			time.Sleep(20 * time.Millisecond)
			return nil
		}),
	})
	sub, err := e.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := e.Create(ctx, spool.Request{Kind: "p"})
	last, n := -1, 0
	for ev := range sub {
		if ev.Task.ID != tk.ID {
			continue
		}
		if ev.Type == spool.EventProgress {
			n++
			if ev.Task.Progress <= last || ev.Task.Progress > 100 {
				t.Errorf("progress went from %d to %d", last, ev.Task.Progress)
			}
			last = ev.Task.Progress
		}
		if ev.Task.Status.Terminal() {
			break
		}
	}
	if n == 0 || n > 51 {
		t.Errorf("%d progress events for 100,001 calls, want a coalesced few", n)
	}
	if got, _ := e.Get(ctx, tk.ID); got.Progress != 100 {
		t.Errorf("completed task progress %d", got.Progress)
	}
}

// TestProgressCoalesced: with a long ProgressInterval, a handler reporting
// 50 steps over some milliseconds writes its progress at most once (the
// first write may not even happen before the completion, which sets 100).
func TestProgressCoalesced(t *testing.T) {
	ctx := ctxT(t)
	e := spooltest.New(t, &spool.Config{ProgressInterval: time.Hour}, map[string]spool.Handler{
		"p": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
			for p := 1; p <= 50; p++ {
				job.Progress(p)
				time.Sleep(time.Millisecond)
			}
			return nil
		}),
	})
	done := spooltest.CreateAndWait(t, e, spool.Request{Kind: "p"})
	evs, err := e.Events(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Task.ID == done.ID && ev.Type == spool.EventProgress {
			n++
		}
	}
	if n > 1 || done.Progress != 100 {
		t.Errorf("%d progress events (progress %d at the end), want at most 1 within one interval", n, done.Progress)
	}
}

func TestDeleteAndStats(t *testing.T) {
	ctx := ctxT(t)
	e := spooltest.New(t, nil, map[string]spool.Handler{"x": spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil })})
	done := spooltest.CreateAndWait(t, e, spool.Request{Kind: "x"})
	waiting, _ := e.Create(ctx, spool.Request{Kind: "x", RunAt: time.Now().Add(time.Hour)})
	if err := e.Delete(ctx, waiting.ID); !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("deleting an unfinished task = %v, want ErrInvalidTransition", err)
	}
	st, err := e.Stats(ctx)
	if err != nil || st.ByStatus[spool.StatusCompleted] != 1 || st.ByStatus[spool.StatusWaiting] != 1 || st.ByKind["x"][spool.StatusCompleted] != 1 {
		t.Errorf("Stats = %+v, %v", st, err)
	}
	if err := e.Delete(ctx, done.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get(ctx, done.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	evs, _ := e.Events(ctx, "", 100)
	for _, ev := range evs {
		if ev.Task.ID == done.ID {
			t.Errorf("event %s of a deleted task remains", ev.Type)
		}
	}
}

func TestListFilters(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{})
	e.Register("x", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	for i := range 30 {
		if _, err := e.Create(ctx, spool.Request{Kind: "x", Ref: fmt.Sprint("r", i%3), Folder: "f"}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := e.List(ctx, &spool.ListParams{Ref: "r1", Limit: 4})
	if err != nil || len(page.Tasks) != 4 || page.Total != 10 || page.Next == "" {
		t.Fatalf("List ref r1: %+v, %v", page, err)
	}
	for i := 1; i < len(page.Tasks); i++ {
		if page.Tasks[i].ID >= page.Tasks[i-1].ID {
			t.Errorf("not newest first")
		}
	}
	for _, bad := range []*spool.ListParams{{Limit: 101}, {Limit: -1}, {Page: -2}, {Status: "done"}, {After: "nope"}} {
		if _, err := e.List(ctx, bad); !errors.Is(err, spool.ErrInvalidRequest) {
			t.Errorf("List(%+v) = %v, want ErrInvalidRequest", bad, err)
		}
	}
}

func TestSchemaTooNew(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := spool.OpenSQLite(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if _, err := spool.Open(ctx, spool.Config{Path: path}); !errors.Is(err, spool.ErrSchemaTooNew) {
		t.Errorf("Open of a newer schema = %v, want ErrSchemaTooNew", err)
	}
}

func TestRegister(t *testing.T) {
	e := openFile(t, spool.Config{})
	h := spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil })
	e.Register("x", h)
	if err := e.TryRegister("x", h); !errors.Is(err, spool.ErrDuplicateKind) {
		t.Errorf("TryRegister twice = %v, want ErrDuplicateKind", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Register of a duplicate kind did not panic")
		}
	}()
	e.Register("x", h)
}

// countingStore counts the claim transactions of the store it wraps.
type countingStore struct {
	spool.Store
	claims atomic.Int64
}

func (s *countingStore) ClaimTasks(ctx context.Context, p *spool.ClaimParams) ([]*spool.Task, error) {
	s.claims.Add(1)
	return s.Store.ClaimTasks(ctx, p)
}

// TestNoSpinAtKindLimit: with a kind at its limit and more of its tasks
// due, the run loop must wait for a worker to finish, not claim in a loop.
func TestNoSpinAtKindLimit(t *testing.T) {
	ctx := ctxT(t)
	st := openStore(t)
	cs := &countingStore{Store: st}
	e := openFile(t, spool.Config{Store: cs, Concurrency: 4, KindConcurrency: map[string]int{"slow": 1}})
	release := make(chan struct{})
	e.Register("slow", spool.HandlerFunc(func(context.Context, *spool.Job) error { <-release; return nil }))
	for range 6 {
		if _, err := e.Create(ctx, spool.Request{Kind: "slow"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	before := cs.claims.Load()
	time.Sleep(500 * time.Millisecond)
	// PollInterval is 1s: at most a couple of claims, not thousands.
	if n := cs.claims.Load() - before; n > 10 {
		t.Errorf("%d claim transactions in 500ms while the kind was at its limit", n)
	}
	close(release)
}
