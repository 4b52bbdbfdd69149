package spool_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// Regression tests for the hardening review (issue 8).

// heldRequest creates a task that no engine in these tests runs: an http
// task on engines without an http handler.
var heldRequest = spool.Request{Kind: "http", URL: "https://example.com/hook"}

// rawDB opens a second connection pool on the database file, as another
// process would, closed when the test ends.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sqlOpen("file:" + path + "?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// runCounter is a handler that counts the runs of each task and records
// any moment at which one task runs twice at once.
type runCounter struct {
	mu      sync.Mutex
	active  map[string]int
	runs    map[string]int
	overlap []string
	hold    time.Duration
	started chan string
}

func newRunCounter(hold time.Duration) *runCounter {
	return &runCounter{active: map[string]int{}, runs: map[string]int{}, hold: hold, started: make(chan string, 100)}
}

func (c *runCounter) Handle(ctx context.Context, job *spool.Job) error {
	id := job.Task.ID
	c.mu.Lock()
	c.active[id]++
	c.runs[id]++
	if c.active[id] > 1 {
		c.overlap = append(c.overlap, id)
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.active[id]--
		c.mu.Unlock()
	}()
	select {
	case c.started <- id:
	default:
	}
	// Ignore cancellation, as a handler in the middle of work might, so
	// that a second run would overlap this one.
	time.Sleep(c.hold)
	return nil
}

func (c *runCounter) check(t *testing.T, ids ...string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.overlap) > 0 {
		t.Errorf("tasks ran twice at once: %v", c.overlap)
	}
	for _, id := range ids {
		if c.runs[id] != 1 {
			t.Errorf("task %s ran %d times, want once", id, c.runs[id])
		}
	}
}

// Item 1: a row whose options cannot be decoded (written before Create
// normalised every kind's options, or by hand) ends in error with the
// reason; the tasks claimed with it run once each, and Get, List and the
// event stream go on.
func TestUndecodableRowQuarantined(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	counter := newRunCounter(0)
	var mu sync.Mutex
	var seen []spool.Event
	e := openFile(t, spool.Config{Path: path, Concurrency: 4, OnEvent: func(ev spool.Event) {
		mu.Lock()
		seen = append(seen, ev)
		mu.Unlock()
	}})
	e.Register("custom", counter)
	var ids []string
	for range 3 {
		tk, err := e.Create(ctx, spool.Request{Kind: "custom", Options: map[string]any{"x": 1}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	bad := ids[1]
	if _, err := rawDB(t, path).Exec(`UPDATE tasks SET options = '{"x":1e400}' WHERE id = ?`, bad); err != nil {
		t.Fatal(err)
	}
	// Readers are not poisoned before the engine runs anything.
	if _, err := e.Get(ctx, bad); err != nil {
		t.Errorf("Get of the damaged task: %v", err)
	}
	if page, err := e.List(ctx, nil); err != nil || len(page.Tasks) != 3 {
		t.Errorf("List with a damaged task = %v, %v", page, err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		got, err := e.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := spool.StatusCompleted
		if id == bad {
			want = spool.StatusError
			if !strings.Contains(got.Error, "cannot be read") || !strings.Contains(got.Error, "options") {
				t.Errorf("damaged task's error %q does not give the reason", got.Error)
			}
		}
		if got.Status != want {
			t.Errorf("task %s is %s, want %s", id, got.Status, want)
		}
	}
	counter.check(t, ids[0], ids[2])
	if counter.runs[bad] != 0 {
		t.Errorf("damaged task ran %d times", counter.runs[bad])
	}
	// The event stream went past the damaged task's events.
	evs, err := e.Events(ctx, "", 100)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	var last spool.EventType
	for _, ev := range evs {
		if ev.Task.ID == bad {
			last = ev.Type
		}
	}
	if last != spool.EventFor(spool.StatusError) {
		t.Errorf("damaged task's last event %q, want task.error", last)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= len(evs)-3 { // OnEvent starts after the three task.created events
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnEvent saw %d events of %d", n, len(evs)-3)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Item 1, at the store: a claim that meets a damaged row returns the
// others, claimed once, and no error.
func TestStoreClaimSkipsUndecodableRow(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "x.db")
	st, err := spool.OpenSQLite(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	var tasks []*spool.Task
	for _, id := range []string{"task_a", "task_b", "task_c"} {
		tasks = append(tasks, &spool.Task{ID: id, Kind: "x", Status: spool.StatusPending, Created: now, Updated: now, MaxAttempts: 3})
	}
	if _, err := st.CreateTasks(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, path).Exec(`UPDATE tasks SET input = '{"width": "wide"}' WHERE id = 'task_b'`); err != nil {
		t.Fatal(err)
	}
	got, err := st.ClaimTasks(ctx, &spool.ClaimParams{Owner: "o", Now: time.Now(), Lease: time.Minute,
		Batches: []spool.ClaimBatch{{Kinds: []string{"x"}, Limit: 10}}})
	if err != nil {
		t.Fatalf("ClaimTasks: %v", err)
	}
	var ids []string
	for _, tk := range got {
		ids = append(ids, tk.ID)
	}
	if !slices.Equal(ids, []string{"task_a", "task_c"}) {
		t.Errorf("claimed %v, want task_a and task_c", ids)
	}
	b, err := st.GetTask(ctx, "task_b")
	if err != nil || b.Status != spool.StatusError || !strings.Contains(b.Error, "input") {
		t.Errorf("damaged task = %+v, %v; want error naming the input", b, err)
	}
}

// Item 2: a heartbeat that waits behind another connection's write for
// longer than the lease still renews it, so the running task is neither
// requeued nor run a second time.
func TestNoDoubleRunAfterLongLockWait(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	counter := newRunCounter(3 * time.Second)
	e := openFile(t, spool.Config{Path: path, LeaseDuration: time.Second, HeartbeatInterval: 100 * time.Millisecond,
		PollInterval: 20 * time.Millisecond})
	e.Register("x", counter)
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tk, err := e.Create(ctx, spool.Request{Kind: "x"})
	if err != nil {
		t.Fatal(err)
	}
	<-counter.started
	// Another process holds the write lock for 1.5 leases.
	conn, err := rawDB(t, path).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	got, err := e.Wait(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != spool.StatusCompleted || got.Attempt != 1 {
		t.Errorf("task %s on attempt %d, want completed on the first", got.Status, got.Attempt)
	}
	counter.check(t, tk.ID)
}

// fakeInstance records an instance of another engine holding one
// processing task, with its heartbeat age set by hand.
func fakeInstance(t *testing.T, e *spool.Engine, path string, in spool.Instance, age time.Duration) string {
	t.Helper()
	ctx := ctxT(t)
	st := e.Store()
	tk, err := e.Create(ctx, heldRequest)
	if err != nil {
		t.Fatal(err)
	}
	// The claim first, then the record: the engine may judge the record
	// at once, and must find the task held when it does.
	if _, err := st.ClaimTasks(ctx, &spool.ClaimParams{Owner: in.ID, Now: time.Now(), Lease: time.Hour,
		Batches: []spool.ClaimBatch{{Kinds: []string{"http"}, Limit: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Heartbeat(ctx, &in, time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, path).Exec("UPDATE instances SET heartbeat = ? WHERE id = ?",
		time.Now().Add(-age).UnixNano(), in.ID); err != nil {
		t.Fatal(err)
	}
	return tk.ID
}

// self returns this engine's instance record.
func self(t *testing.T, e *spool.Engine) *spool.Instance {
	t.Helper()
	insts, err := e.Store().Instances(ctxT(t))
	if err != nil || len(insts) == 0 {
		t.Fatalf("Instances = %v, %v", insts, err)
	}
	for _, in := range insts {
		if in.PID == os.Getpid() && !strings.HasPrefix(in.ID, "inst_fake") {
			return in
		}
	}
	t.Fatal("no instance of this process")
	return nil
}

// Items 3 and 6: who is taken for dead. A PID tells only within one host,
// boot and PID namespace; elsewhere only a heartbeat older than the lease
// does, however many heartbeat intervals that is.
func TestLiveness(t *testing.T) {
	const deadPID = 1 << 30 // above any pid_max
	host, _ := os.Hostname()
	cases := []struct {
		name     string
		in       func(me *spool.Instance) spool.Instance
		age      time.Duration
		takeBack bool
	}{
		{"same host, other PID namespace, pid not here", func(me *spool.Instance) spool.Instance {
			return spool.Instance{Host: host, PID: deadPID, BootID: me.BootID, PIDNamespace: "pid:[1]"}
		}, 0, false},
		{"same host, other boot, pid not here", func(me *spool.Instance) spool.Instance {
			return spool.Instance{Host: host, PID: deadPID, BootID: "another-boot", PIDNamespace: me.PIDNamespace}
		}, 0, false},
		{"same host and namespace, process gone", func(me *spool.Instance) spool.Instance {
			return spool.Instance{Host: host, PID: deadPID, BootID: me.BootID, PIDNamespace: me.PIDNamespace}
		}, 0, true},
		{"other host, silent for many heartbeats but less than the lease", func(*spool.Instance) spool.Instance {
			return spool.Instance{Host: "elsewhere", PID: 1}
		}, 8 * time.Second, false},
		{"other host, silent for longer than the lease", func(*spool.Instance) spool.Instance {
			return spool.Instance{Host: "elsewhere", PID: 1}
		}, 40 * time.Second, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := ctxT(t)
			path := filepath.Join(t.TempDir(), "spool.db")
			e := openFile(t, spool.Config{Path: path, LeaseDuration: 30 * time.Second, HeartbeatInterval: 20 * time.Millisecond,
				AcceptUnavailableKinds: true})
			e.Register("x", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
			if err := e.Start(ctx); err != nil {
				t.Fatal(err)
			}
			me := self(t, e)
			if c.name == "same host and namespace, process gone" && (me.BootID == "" || me.PIDNamespace == "") {
				t.Skip("this system does not tell its boot id and PID namespace (Linux /proc does)")
			}
			in := c.in(me)
			in.ID, in.Started = "inst_fake", time.Now().Add(-time.Minute)
			id := fakeInstance(t, e, path, in, c.age)
			// A live engine's task stays put for a second (fifty
			// heartbeats); a dead one's comes back, waited for up to 20 s.
			watch := time.Second
			if c.takeBack {
				watch = 20 * time.Second
			}
			deadline := time.Now().Add(watch)
			for time.Now().Before(deadline) {
				got, err := e.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != spool.StatusProcessing {
					if !c.takeBack {
						t.Fatalf("a live engine's task was taken back: %s", got.Status)
					}
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			if c.takeBack {
				t.Fatal("a dead engine's task was not taken back")
			}
		})
	}
}

// Item 5: pruning keeps every event that a stored cursor has not read,
// not only OnEvent's.
func TestPruneKeepsEveryCursor(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{EventRetention: time.Millisecond, AcceptUnavailableKinds: true})
	e.Register("x", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	first, err := e.Create(ctx, heldRequest)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := e.Events(ctx, "", 10)
	if err != nil || len(evs) != 1 || evs[0].Task.ID != first.ID {
		t.Fatalf("Events = %v, %v", evs, err)
	}
	if err := e.Store().SetCursor(ctx, "mine", evs[0].ID); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := e.Create(ctx, heldRequest); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Wait for a prune: the event the cursor has read goes.
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := e.Events(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 || evs[0].Task.ID != first.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("events were never pruned")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := e.Store().Cursor(ctx, "mine")
	if err != nil {
		t.Fatal(err)
	}
	unread, err := e.Events(ctx, c, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(unread) != 4 {
		t.Errorf("cursor mine has %d unread events left, want 4", len(unread))
	}
}

// Item 9: small contracts.
func TestStoreListNilParams(t *testing.T) {
	e := openFile(t, spool.Config{AcceptUnavailableKinds: true})
	for range 25 {
		if _, err := e.Create(ctxT(t), heldRequest); err != nil {
			t.Fatal(err)
		}
	}
	page, err := e.Store().ListTasks(ctxT(t), nil)
	if err != nil || len(page.Tasks) != 20 || page.Total != 25 {
		t.Errorf("ListTasks(nil) = %d tasks of %d, %v; want 20 of 25", len(page.Tasks), page.Total, err)
	}
}

func TestTaskValueMarshalsAsTaskObject(t *testing.T) {
	tk := spool.Task{ID: "task_x", Kind: "image", Status: spool.StatusPending}
	b, err := json.Marshal(struct{ T spool.Task }{tk})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"object":"task"`) || strings.Contains(string(b), `"Kind"`) {
		t.Errorf("a Task value in a struct encodes as %s", b)
	}
}

func TestEventsLimitZeroIsDefault(t *testing.T) {
	e := openFile(t, spool.Config{AcceptUnavailableKinds: true})
	if _, err := e.Create(ctxT(t), heldRequest); err != nil {
		t.Fatal(err)
	}
	evs, err := e.Events(ctxT(t), "", 0)
	if err != nil || len(evs) != 1 {
		t.Errorf("Events(limit 0) = %d events, %v; want 1", len(evs), err)
	}
	if _, err := e.Events(ctxT(t), "", -1); !errors.Is(err, spool.ErrInvalidRequest) {
		t.Errorf("Events(limit -1) = %v, want a validation error", err)
	}
}

func TestConfigNotSharedWithCaller(t *testing.T) {
	cfg := spool.Config{KindConcurrency: map[string]int{"x": 1}, KindTimeout: map[string]time.Duration{"x": time.Second}}
	e := openFile(t, cfg)
	cfg.KindConcurrency["x"] = 7
	cfg.KindTimeout["x"] = time.Hour
	got := e.Config()
	if got.KindConcurrency["x"] != 1 || got.KindTimeout["x"] != time.Second {
		t.Errorf("the engine's config follows the caller's maps: %v %v", got.KindConcurrency, got.KindTimeout)
	}
	got.KindConcurrency["x"] = 9
	if e.Config().KindConcurrency["x"] != 1 {
		t.Error("the engine's config follows the map Config returned")
	}
}

// Close returns when its context ends even if a handler ignores its
// cancellation, naming the task still running.
func TestCloseReturnsWithStuckHandler(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	started := make(chan string, 1)
	e, err := spool.Open(context.Background(), spool.Config{Path: filepath.Join(t.TempDir(), "spool.db")})
	if err != nil {
		t.Fatal(err)
	}
	e.Register("stuck", spool.HandlerFunc(func(_ context.Context, job *spool.Job) error {
		started <- job.Task.ID
		<-release
		return nil
	}))
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Create(context.Background(), spool.Request{Kind: "stuck"}); err != nil {
		t.Fatal(err)
	}
	id := <-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Close(ctx) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), id) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want an error naming %s", err, id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return after its context ended")
	}
}

// Item 10: an event shows the task as it was at that event in every field
// a change sets: a retried task's first processing event shows attempt 1
// and no output, its completion the output.
func TestEventSnapshotAsItWas(t *testing.T) {
	ctx := ctxT(t)
	var calls atomic.Int32
	e := openFile(t, spool.Config{MaxAttempts: 3})
	e.Register("flaky", spool.HandlerFunc(func(_ context.Context, job *spool.Job) error {
		if calls.Add(1) == 1 {
			return errors.New("first attempt fails")
		}
		return job.SetOutput(map[string]int{"n": 1})
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tk, err := e.Create(ctx, spool.Request{Kind: "flaky"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.Wait(ctx, tk.ID); err != nil || got.Status != spool.StatusCompleted {
		t.Fatalf("Wait = %v, %v", got, err)
	}
	evs, err := e.Events(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var processing []int
	for _, ev := range evs {
		tt := ev.Task
		switch ev.Type {
		case spool.EventFor(spool.StatusProcessing):
			processing = append(processing, tt.Attempt)
			if tt.Status != spool.StatusProcessing || tt.Output != nil {
				t.Errorf("processing event shows status %s, output %s", tt.Status, tt.Output)
			}
		case spool.EventFor(spool.StatusWaiting):
			if tt.Attempt != 1 || tt.Error != "first attempt fails" {
				t.Errorf("retry event shows attempt %d, error %q", tt.Attempt, tt.Error)
			}
		case spool.EventFor(spool.StatusCompleted):
			if tt.Attempt != 2 || string(tt.Output) != `{"n":1}` {
				t.Errorf("completion event shows attempt %d, output %s", tt.Attempt, tt.Output)
			}
		}
	}
	if !slices.Equal(processing, []int{1, 2}) {
		t.Errorf("processing events show attempts %v, want [1 2]", processing)
	}
}

// From review: a lost lease's old run that ignores its context must not
// stall the engine. The task's new claim waits (released, due later) while
// other tasks run on the free workers.
func TestStubbornOldRunDoesNotStallEngine(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	release := make(chan struct{})
	counter := &runCounter{active: map[string]int{}, runs: map[string]int{}, started: make(chan string, 10)}
	e := openFile(t, spool.Config{Path: path, Concurrency: 4, PollInterval: 20 * time.Millisecond})
	e.Register("stubborn", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		counter.Handle(ctx, job) // counts, checks for overlap
		<-release                // ignores ctx
		return nil
	}))
	e.Register("quick", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	t.Cleanup(func() { close(release) })
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := e.Create(ctx, spool.Request{Kind: "stubborn"})
	if err != nil {
		t.Fatal(err)
	}
	<-counter.started
	// Another engine takes the task back, as after a lost lease.
	if _, err := rawDB(t, path).Exec(`UPDATE tasks SET status = 'pending', lease_owner = NULL,
		lease_until = NULL, due = 0 WHERE id = ?`, s.ID); err != nil {
		t.Fatal(err)
	}
	qs, err := e.CreateMany(ctx, []spool.Request{{Kind: "quick"}, {Kind: "quick"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if got, err := e.Wait(ctx, q.ID); err != nil || got.Status != spool.StatusCompleted {
			t.Fatalf("quick task beside a stubborn old run: %v, %v", got, err)
		}
	}
	got, err := e.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status == spool.StatusCompleted {
		t.Errorf("the task completed while its old run still ran")
	}
	counter.check(t)
}

// From review: Close returns when its context ends even if OnEvent blocks.
func TestCloseReturnsWithBlockedOnEvent(t *testing.T) {
	ctx := ctxT(t)
	block := make(chan struct{})
	got := make(chan struct{}, 100)
	e, err := spool.Open(ctx, spool.Config{Path: filepath.Join(t.TempDir(), "s.db"), OnEvent: func(spool.Event) {
		got <- struct{}{}
		<-block
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(block) })
	e.Register("x", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Create(ctx, spool.Request{Kind: "x"}); err != nil {
		t.Fatal(err)
	}
	<-got
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Close(cctx) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "OnEvent") {
			t.Errorf("Close = %v, want an error saying OnEvent still runs", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return after its context ended, with OnEvent blocked")
	}
	// A second Close waits for the first, which is done.
	if err := e.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
