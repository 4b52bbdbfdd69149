package spool_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/spooltest"
)

// Regression tests for problems found in review.

func TestStoreCallAfterCloseFails(t *testing.T) {
	st, err := spool.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "x.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for i := range 50 {
		done := make(chan error, 1)
		go func() { done <- st.SetCursor(context.Background(), "c", "") }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("call %d after Close succeeded", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d after Close hung", i)
		}
	}
}

// failOnce fails the first completion write.
type failOnce struct {
	spool.Store
	n atomic.Int32
}

func (f *failOnce) Apply(ctx context.Context, ch *spool.Change) (*spool.Task, error) {
	if ch.To == spool.StatusCompleted && f.n.Add(1) == 1 {
		return nil, errors.New("disk I/O error (injected)")
	}
	return f.Store.Apply(ctx, ch)
}

// TestOutcomeWriteFailureRecovered: when the outcome cannot be recorded,
// the engine stops renewing the task's lease, so the task is recovered and
// run again instead of staying processing forever.
func TestOutcomeWriteFailureRecovered(t *testing.T) {
	st := openStore(t)
	var runs atomic.Int32
	e := spooltest.New(t, &spool.Config{Store: &failOnce{Store: st}, LeaseDuration: 500 * time.Millisecond,
		HeartbeatInterval: 50 * time.Millisecond}, map[string]spool.Handler{
		"x": spool.HandlerFunc(func(context.Context, *spool.Job) error { runs.Add(1); return nil }),
	})
	got := spooltest.CreateAndWait(t, e, spool.Request{Kind: "x"})
	if got.Status != spool.StatusCompleted || runs.Load() != 2 || got.Attempt != 2 {
		t.Errorf("task %s after %d runs, attempt %d; want completed on the second run", got.Status, runs.Load(), got.Attempt)
	}
}

// TestSweeperKeepsRunningTasksFiles: bytes of a task still running are not
// orphans, however old.
func TestSweeperKeepsRunningTasksFiles(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{OrphanFileAge: 20 * time.Millisecond, EventRetention: 10 * time.Millisecond})
	e.Register("slow", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		if _, err := job.CreateFile(ctx, strings.NewReader("hello"), &spool.File{Filename: "out.txt"}); err != nil {
			return err
		}
		time.Sleep(1500 * time.Millisecond) // several sweeps happen meanwhile
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	task, _ := e.Create(ctx, spool.Request{Kind: "slow"})
	done, err := e.Wait(ctx, task.ID)
	if err != nil || done.Status != spool.StatusCompleted {
		t.Fatal(done, err)
	}
	fs, _ := e.ListFiles(ctx, &spool.FileListParams{TaskID: task.ID})
	if len(fs) != 1 {
		t.Fatalf("%d file records", len(fs))
	}
	_, r, err := e.OpenFile(ctx, fs[0].ID)
	if err != nil {
		t.Fatalf("the output's bytes were swept while its task ran: %v", err)
	}
	r.Close()
}

// TestCancelledBeforeStartNeverRuns cancels a task that the engine has
// claimed ahead but not started: its handler must not run.
func TestCancelledBeforeStartNeverRuns(t *testing.T) {
	ctx := ctxT(t)
	release := make(chan struct{})
	started := make(chan string, 100)
	e := spooltest.New(t, &spool.Config{Concurrency: 1, HeartbeatInterval: time.Hour}, map[string]spool.Handler{
		"x": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
			started <- job.Task.ID
			if job.Task.Options["block"] == true {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return nil
		}),
	})
	// Quick tasks first, so that the engine claims ahead.
	for range 10 {
		spooltest.CreateAndWait(t, e, spool.Request{Kind: "x"})
		<-started
	}
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	ab, err := e.CreateMany(ctx, []spool.Request{{Kind: "x", Options: map[string]any{"block": true}}, {Kind: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := ab[0], ab[1]
	if id := <-started; id != a.ID {
		t.Fatalf("started %s, want %s", id, a.ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cur, _ := e.Get(ctx, b.ID)
		if cur.Status == spool.StatusProcessing {
			break // claimed ahead, waiting for the worker a holds
		}
		if time.Now().After(deadline) {
			t.Fatalf("b was not claimed ahead: %s", cur.Status)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := e.Cancel(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	if _, err := e.Wait(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	c := spooltest.CreateAndWait(t, e, spool.Request{Kind: "x"}) // the worker has moved on
	for len(started) > 0 {
		if id := <-started; id == b.ID {
			t.Fatal("the handler ran for a task cancelled before it started")
		}
	}
	if c.Status != spool.StatusCompleted {
		t.Errorf("next task %s", c.Status)
	}
}

// A panic in a hook reaches the caller, and the store stays usable: the
// transaction it was in is rolled back, and the writer takes new writes.
func TestStoreHookPanicLeavesWriterUsable(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	tk := &spool.Task{ID: "task_panic", Kind: "x", Status: spool.StatusPending, Created: now, Updated: now}
	if _, err := st.CreateTasks(ctx, []*spool.Task{tk}); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the hook's panic", r)
			}
		}()
		st.Apply(ctx, &spool.Change{ID: tk.ID, To: spool.StatusCancelled,
			Hook: func(context.Context, spool.Tx, *spool.Task) error { panic("boom") }})
	}()
	got, err := st.GetTask(ctx, tk.ID)
	if err != nil || got.Status != spool.StatusPending {
		t.Fatalf("after the panic the task is %v, %v; want it still pending", got, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := st.Apply(ctx, &spool.Change{ID: tk.ID, To: spool.StatusCancelled})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write after the panic: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write after the panic hangs")
	}
}

// Outcomes queued behind a busy writer are committed together (one UPDATE
// for many): each still gets its own answer, and a wrong owner or attempt
// is refused as alone.
func TestStoreOutcomesTogether(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	var tasks []*spool.Task
	for i := range 12 {
		tasks = append(tasks, &spool.Task{ID: fmt.Sprintf("task_%02d", i), Kind: "x", Status: spool.StatusPending, Created: now, Updated: now})
	}
	if _, err := st.CreateTasks(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	claimed, err := st.ClaimTasks(ctx, &spool.ClaimParams{Owner: "o", Now: now, Lease: time.Minute,
		Batches: []spool.ClaimBatch{{Kinds: []string{"x"}, Limit: 12}}})
	if err != nil || len(claimed) != 12 {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	{
		// Task 0 keeps the writer busy while the others queue.
		busy := make(chan struct{})
		go func() {
			st.Apply(ctx, &spool.Change{ID: "task_00", To: "", Progress: 1, Owner: "o",
				Hook: func(context.Context, spool.Tx, *spool.Task) error {
					close(busy)
					time.Sleep(50 * time.Millisecond)
					return nil
				}})
		}()
		<-busy
		errs := make([]error, 12)
		var wg sync.WaitGroup
		for i := 1; i < 12; i++ {
			ch := &spool.Change{ID: tasks[i].ID, To: spool.StatusCompleted, Owner: "o", AtAttempt: 1, NoResult: true,
				Output: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
			switch i % 4 {
			case 1:
				ch.Owner = "someone-else"
			case 2:
				ch.AtAttempt = 2
			case 3:
				ch.To = spool.StatusFailed
				ch.Error = "boom"
				ch.Output = nil
			}
			wg.Go(func() { _, errs[i] = st.Apply(ctx, ch) })
		}
		wg.Wait()
		for i := 1; i < 12; i++ {
			got, err := st.GetTask(ctx, tasks[i].ID)
			if err != nil {
				t.Fatal(err)
			}
			switch i % 4 {
			case 1, 2:
				if !errors.Is(errs[i], spool.ErrInvalidTransition) || got.Status != spool.StatusProcessing {
					t.Errorf("task %d: err %v, status %s; want refused and still processing", i, errs[i], got.Status)
				}
			case 3:
				if errs[i] != nil || got.Status != spool.StatusFailed || got.Error != "boom" {
					t.Errorf("task %d: err %v, status %s %q; want failed", i, errs[i], got.Status, got.Error)
				}
			default:
				if errs[i] != nil || got.Status != spool.StatusCompleted || string(got.Output) != fmt.Sprintf(`{"i":%d}`, i) || got.Progress != 100 {
					t.Errorf("task %d: err %v, status %s output %s; want completed", i, errs[i], got.Status, got.Output)
				}
			}
		}
	}
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.ByStatus[spool.StatusCompleted] != 2 || stats.ByStatus[spool.StatusFailed] != 3 || stats.ByStatus[spool.StatusProcessing] != 7 {
		t.Errorf("counts %v", stats.ByStatus)
	}
}

// Creates queued behind a busy writer share a multi-row INSERT; one that
// fails (here a duplicate id) fails alone.
func TestStoreCreatesTogether(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	mk := func(id string) *spool.Task {
		return &spool.Task{ID: id, Kind: "x", Status: spool.StatusPending, Created: now, Updated: now, URL: "https://example.com/" + id}
	}
	if _, err := st.CreateTasks(ctx, []*spool.Task{mk("task_busy"), mk("task_dup")}); err != nil {
		t.Fatal(err)
	}
	holdWriter(t, st, "task_busy")
	ids := make([]string, 10)
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = fmt.Sprintf("task_%02d", i)
		if i == 5 {
			ids[i] = "task_dup"
		}
		wg.Go(func() {
			out, err := st.CreateTasks(ctx, []*spool.Task{mk(ids[i])})
			if err == nil && (len(out) != 1 || out[0].ID != ids[i]) {
				err = fmt.Errorf("got %v back", out)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, id := range ids {
		if i == 5 {
			if errs[i] == nil {
				t.Errorf("duplicate id created")
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("create %s: %v", id, errs[i])
			continue
		}
		if got, err := st.GetTask(ctx, id); err != nil || got.URL != "https://example.com/"+id {
			t.Errorf("task %s: %v, %v", id, got, err)
		}
	}
	stats, err := st.Stats(ctx)
	if err != nil || stats.ByStatus[spool.StatusPending] != 10 {
		t.Errorf("Stats = %v, %v; want 10 pending", stats, err)
	}
}

// openStore opens a SQLite store on a file of its own, closed when the test
// ends.
func openStore(t *testing.T) spool.Store {
	t.Helper()
	st, err := spool.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "x.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Stores opened at the same time on a file that does not exist yet all
// open (found in review: creating the file with its page size made the
// others fail with "database is locked").
func TestOpenNewFileConcurrently(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("new-%d.db", round))
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				st, err := spool.OpenSQLite(context.Background(), path, nil)
				if err == nil {
					err = st.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, store %d: %v", round, i, err)
			}
		}
	}
}

// panicJSON panics when encoded: caller code that runs inside a write.
type panicJSON struct{}

func (panicJSON) MarshalJSON() ([]byte, error) { panic("boom") }

// A create whose options panic when encoded, queued with others that share
// its INSERT, panics in its own caller only; the others are created.
func TestStoreMergedCreatePanic(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	mk := func(id string) *spool.Task {
		return &spool.Task{ID: id, Kind: "x", Status: spool.StatusPending, Created: now, Updated: now}
	}
	if _, err := st.CreateTasks(ctx, []*spool.Task{mk("task_busy")}); err != nil {
		t.Fatal(err)
	}
	holdWriter(t, st, "task_busy")
	results := make([]any, 6)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					results[i] = r
				}
			}()
			tk := mk(fmt.Sprintf("task_%d", i))
			if i == 3 {
				tk.Options = map[string]any{"bad": panicJSON{}}
			}
			_, err := st.CreateTasks(ctx, []*spool.Task{tk})
			results[i] = err
		})
	}
	wg.Wait()
	for i, r := range results {
		switch {
		case i == 3:
			if s := fmt.Sprint(r); !strings.Contains(s, "boom") {
				t.Errorf("the bad create returned %v, want its panic", r)
			}
		case r != nil:
			t.Errorf("create %d: %v", i, r)
		}
	}
	stats, err := st.Stats(ctx)
	if err != nil || stats.ByStatus[spool.StatusPending] != 5 {
		t.Errorf("Stats = %v, %v; want 5 pending", stats, err)
	}
}

// holdWriter keeps st's writer busy for 50 ms from its return, cancelling
// the pending task id inside a hook that waits, so that the writes made
// meanwhile queue and are committed together.
func holdWriter(t *testing.T, st spool.Store, id string) {
	t.Helper()
	busy := make(chan struct{})
	go st.Apply(context.Background(), &spool.Change{ID: id, To: spool.StatusCancelled,
		Hook: func(context.Context, spool.Tx, *spool.Task) error {
			close(busy)
			time.Sleep(50 * time.Millisecond)
			return nil
		}})
	<-busy
}

// Bad list parameters are refused naming the field: a page whose rows to
// skip overflow listed the first page, and a files cursor that is not a
// file id listed nothing.
func TestListRefusesBadPageAndCursor(t *testing.T) {
	ctx := context.Background()
	e := spooltest.New(t, nil, nil)
	for _, tt := range []struct {
		name  string
		err   error
		field string
	}{
		{"huge page", func() error { _, err := e.List(ctx, &spool.ListParams{Page: 1 << 62}); return err }(), "page"},
		{"negative page", func() error { _, err := e.List(ctx, &spool.ListParams{Page: -1}); return err }(), "page"},
		{"task cursor", func() error { _, err := e.List(ctx, &spool.ListParams{After: "nope"}); return err }(), "after"},
		{"file cursor", func() error { _, err := e.ListFiles(ctx, &spool.FileListParams{After: "nope"}); return err }(), "after"},
	} {
		var ve *spool.ValidationError
		if !errors.As(tt.err, &ve) || ve.Field != tt.field {
			t.Errorf("%s: %v, want a ValidationError on %s", tt.name, tt.err, tt.field)
		}
	}
	if _, err := e.List(ctx, &spool.ListParams{Page: 1 << 40}); err != nil {
		t.Errorf("the highest page: %v", err)
	}
}
