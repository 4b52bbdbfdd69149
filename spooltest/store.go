package spooltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spoolrun/spool"
)

// TestStore runs the conformance suite against stores made by newStore,
// each subtest on a fresh, empty store. Every Store implementation must pass
// it; the engine relies on nothing else.
func TestStore(t *testing.T, newStore func(t *testing.T) spool.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s spool.Store)
	}{
		{"CreateGet", testCreateGet},
		{"GetMissing", testGetMissing},
		{"Idempotency", testIdempotency},
		{"CreateAllOrNothing", testCreateAllOrNothing},
		{"CreateBatches", testCreateBatches},
		{"CreateEveryField", testCreateEveryField},
		{"Transitions", testTransitions},
		{"Owner", testOwner},
		{"Progress", testProgress},
		{"ClaimOrderAndLimits", testClaimOrder},
		{"ClaimDue", testClaimDue},
		{"ClaimManyKinds", testClaimManyKinds},
		{"ClaimConcurrent", testClaimConcurrent},
		{"CreateAndClaim", testCreateAndClaim},
		{"Events", testEvents},
		{"HookAtomic", testHookAtomic},
		{"HookSiblings", testHookSiblings},
		{"HeartbeatRecover", testHeartbeatRecover},
		{"List", testList},
		{"Delete", testDelete},
		{"EventsPastDeleted", testEventsPastDeleted},
		{"Stats", testStats},
		{"PruneAndCursor", testPruneAndCursor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

var testCtx = context.Background()

func newID(prefix string) string { return prefix + ulid.Make().String() }

func task(kind string) *spool.Task {
	now := time.Now().UTC()
	return &spool.Task{ID: newID("task_"), Kind: kind, Status: spool.StatusPending,
		Options: map[string]any{"n": float64(1)}, Created: now, Updated: now, MaxAttempts: 3}
}

func create(t *testing.T, s spool.Store, ts ...*spool.Task) []*spool.Task {
	t.Helper()
	out, err := s.CreateTasks(testCtx, ts)
	if err != nil {
		t.Fatalf("CreateTasks: %v", err)
	}
	return out
}

func get(t *testing.T, s spool.Store, id string) *spool.Task {
	t.Helper()
	got, err := s.GetTask(testCtx, id)
	if err != nil {
		t.Fatalf("GetTask(%s): %v", id, err)
	}
	return got
}

func claim(t *testing.T, s spool.Store, owner string, batches ...spool.ClaimBatch) []*spool.Task {
	t.Helper()
	now := time.Now()
	got, err := s.ClaimTasks(testCtx, &spool.ClaimParams{Owner: owner, Now: now,
		LeaseUntil: now.Add(time.Minute), Batches: batches})
	if err != nil {
		t.Fatalf("ClaimTasks: %v", err)
	}
	return got
}

func ids(ts []*spool.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func allEvents(t *testing.T, s spool.Store) []*spool.Event {
	t.Helper()
	var out []*spool.Event
	after := ""
	for {
		evs, err := s.Events(testCtx, after, 100)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		out = append(out, evs...)
		if len(evs) < 100 {
			return out
		}
		after = evs[len(evs)-1].ID
	}
}

func testCreateGet(t *testing.T, s spool.Store) {
	in := task("image")
	in.Input = &spool.File{Object: "source", URL: "https://example.com/a.mp4"}
	in.Options = map[string]any{"width": float64(320), "ref": "thumb", "folder": "a/b"}
	in.URL, in.WebhookURL, in.CreatedBy = "https://example.com/a.mp4", "https://example.com/hook", "me"
	in.RunAt = in.Created.Add(-time.Second)
	create(t, s, in)
	got := get(t, s, in.ID)
	if got.ID != in.ID || got.Kind != "image" || got.Status != spool.StatusPending ||
		got.URL != in.URL || got.WebhookURL != in.WebhookURL || got.CreatedBy != "me" ||
		got.MaxAttempts != 3 || got.Attempt != 0 || got.Input == nil || got.Input.URL != in.URL {
		t.Errorf("GetTask = %+v, want the stored fields of %+v", got, in)
	}
	if got.Options["width"] != float64(320) || got.Options["ref"] != "thumb" {
		t.Errorf("Options = %v, want %v", got.Options, in.Options)
	}
	if !got.Created.Equal(in.Created) || !got.Updated.Equal(in.Updated) || !got.RunAt.Equal(in.RunAt) {
		t.Errorf("times = %v %v %v, want %v %v %v", got.Created, got.Updated, got.RunAt, in.Created, in.Updated, in.RunAt)
	}
	if got.Created.Location() != time.UTC {
		t.Errorf("Created is in %v, want UTC", got.Created.Location())
	}
	if len(got.Output) != 0 {
		t.Errorf("Output = %s, want none", got.Output)
	}
}

func testGetMissing(t *testing.T, s spool.Store) {
	_, err := s.GetTask(testCtx, newID("task_"))
	if !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("GetTask(missing) = %v, want ErrNotFound", err)
	}
	_, err = s.Apply(testCtx, &spool.Change{ID: newID("task_"), To: spool.StatusCancelled})
	if !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("Apply(missing) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteTask(testCtx, newID("task_")); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("DeleteTask(missing) = %v, want ErrNotFound", err)
	}
}

func testIdempotency(t *testing.T, s spool.Store) {
	a, b := task("x"), task("x")
	a.IdempotencyKey, b.IdempotencyKey = "k1", "k1"
	create(t, s, a)
	got := create(t, s, b)
	if got[0].ID != a.ID {
		t.Errorf("second create with the same key returned %s, want the first task %s", got[0].ID, a.ID)
	}
	if _, err := s.GetTask(testCtx, b.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("the second task was stored: %v", err)
	}
}

func testCreateAllOrNothing(t *testing.T, s spool.Store) {
	a := task("x")
	create(t, s, a)
	b, dup := task("x"), task("x")
	dup.ID = a.ID // a primary key clash fails the batch
	if _, err := s.CreateTasks(testCtx, []*spool.Task{b, dup}); err == nil {
		t.Fatal("CreateTasks with a duplicate id succeeded")
	}
	if _, err := s.GetTask(testCtx, b.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("a task of the failed batch was stored: %v", err)
	}
}

// testTransitions walks every pair of statuses: the store must apply
// exactly the changes the transition table allows.
func testTransitions(t *testing.T, s spool.Store) {
	for _, from := range spool.Statuses() {
		for _, to := range spool.Statuses() {
			tk := task("x")
			create(t, s, tk)
			force(t, s, tk.ID, from)
			_, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: to})
			want := spool.CanTransition(from, to)
			if want && err != nil {
				t.Errorf("%s → %s: %v, want allowed", from, to, err)
			}
			if !want && !errors.Is(err, spool.ErrInvalidTransition) {
				t.Errorf("%s → %s: %v, want ErrInvalidTransition", from, to, err)
			}
			got := get(t, s, tk.ID)
			if want && got.Status != to || !want && got.Status != from {
				t.Errorf("%s → %s: status is %s", from, to, got.Status)
			}
		}
	}
}

// force walks a pending task to status along allowed transitions.
func force(t *testing.T, s spool.Store, id string, status spool.Status) {
	t.Helper()
	path := map[spool.Status][]spool.Status{
		spool.StatusPending:    nil,
		spool.StatusWaiting:    {spool.StatusProcessing, spool.StatusWaiting},
		spool.StatusProcessing: {spool.StatusProcessing},
		spool.StatusReady:      {spool.StatusProcessing, spool.StatusWaiting, spool.StatusReady},
		spool.StatusCompleted:  {spool.StatusProcessing, spool.StatusCompleted},
		spool.StatusFailed:     {spool.StatusFailed},
		spool.StatusError:      {spool.StatusError},
		spool.StatusCancelled:  {spool.StatusCancelled},
	}[status]
	for _, st := range path {
		if st == spool.StatusProcessing {
			got := claim(t, s, "owner", spool.ClaimBatch{Kinds: []string{"x"}, Limit: 100})
			if !slices.Contains(ids(got), id) {
				t.Fatalf("force %s to processing: not claimed", id)
			}
			// Put back the others claimed alongside.
			for _, c := range got {
				if c.ID != id {
					if _, err := s.Apply(testCtx, &spool.Change{ID: c.ID, To: spool.StatusPending}); err != nil {
						t.Fatal(err)
					}
				}
			}
			continue
		}
		if _, err := s.Apply(testCtx, &spool.Change{ID: id, To: st}); err != nil {
			t.Fatalf("force %s to %s: %v", id, st, err)
		}
	}
}

func testOwner(t *testing.T, s spool.Store) {
	tk := task("x")
	create(t, s, tk)
	claim(t, s, "a", spool.ClaimBatch{Kinds: []string{"x"}, Limit: 1})
	_, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusCompleted, Owner: "b"})
	if !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("completion by a worker that does not hold the lease = %v, want ErrInvalidTransition", err)
	}
	got, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusCompleted, Owner: "a",
		Output: []byte(`{"ok":true}`)})
	if err != nil {
		t.Fatalf("completion by the owner: %v", err)
	}
	if got.Status != spool.StatusCompleted || string(got.Output) != `{"ok":true}` || got.Progress != 100 {
		t.Errorf("completed task = %s %s %d", got.Status, got.Output, got.Progress)
	}
	if got := get(t, s, tk.ID); string(got.Output) != `{"ok":true}` {
		t.Errorf("stored output = %s", got.Output)
	}
}

func testProgress(t *testing.T, s spool.Store) {
	tk := task("x")
	create(t, s, tk)
	if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, Progress: 10}); !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("progress on a pending task = %v, want ErrInvalidTransition", err)
	}
	claim(t, s, "a", spool.ClaimBatch{Kinds: []string{"x"}, Limit: 1})
	for _, p := range []int{30, 20, 150} {
		if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, Progress: p, Owner: "a"}); err != nil {
			t.Fatalf("progress %d: %v", p, err)
		}
	}
	if got := get(t, s, tk.ID); got.Progress != 100 {
		t.Errorf("progress after 30, 20, 150 = %d, want 100 (clamped, never back)", got.Progress)
	}
	var n int
	for _, ev := range allEvents(t, s) {
		if ev.Type == spool.EventProgress {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d progress events, want 2 (30 and 100; 20 changed nothing)", n)
	}
}

func testClaimOrder(t *testing.T, s spool.Store) {
	var all []*spool.Task
	base := time.Now().Add(-time.Hour)
	for i := range 6 {
		tk := task([]string{"a", "b", "c"}[i%3])
		tk.Created = base.Add(time.Duration(i) * time.Second)
		all = append(all, tk)
	}
	create(t, s, all...)
	got := claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"a", "b"}, Limit: 3})
	want := []string{all[0].ID, all[1].ID, all[3].ID} // oldest of a and b
	slices.Sort(want)
	gotIDs := ids(got)
	slices.Sort(gotIDs)
	if !slices.Equal(gotIDs, want) {
		t.Errorf("claimed %v, want the three oldest of kinds a, b: %v", gotIDs, want)
	}
	for _, c := range got {
		if c.Status != spool.StatusProcessing || c.Attempt != 1 {
			t.Errorf("claimed task %s is %s attempt %d, want processing attempt 1", c.ID, c.Status, c.Attempt)
		}
	}
	got = claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"c"}, Limit: 1}, spool.ClaimBatch{Kinds: []string{"a", "b"}, Limit: 5})
	if gotIDs := ids(got); len(got) != 2 || !slices.Contains(gotIDs, all[2].ID) || !slices.Contains(gotIDs, all[4].ID) {
		t.Errorf("second claim took %v, want the oldest c and the last b", gotIDs)
	}
	if got := claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"a", "b"}, Limit: 5}); len(got) != 0 {
		t.Errorf("claim of kinds with nothing left took %v", ids(got))
	}
}

func testClaimDue(t *testing.T, s spool.Store) {
	later := task("x")
	later.Status, later.RunAt = spool.StatusWaiting, time.Now().Add(time.Hour)
	now := task("x")
	create(t, s, later, now)
	got := claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"x"}, Limit: 10})
	if len(got) != 1 || got[0].ID != now.ID {
		t.Errorf("claimed %v, want only the task due now", ids(got))
	}
	next, err := s.NextDue(testCtx, []string{"x", "y"})
	if err != nil || next.Sub(later.RunAt).Abs() > time.Millisecond {
		t.Errorf("NextDue = %v, %v; want %v", next, err, later.RunAt)
	}
	// A retry waits, then is claimable once due.
	due := time.Now().Add(-time.Millisecond)
	if _, err := s.Apply(testCtx, &spool.Change{ID: now.ID, To: spool.StatusWaiting, Due: due, Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	if w := get(t, s, now.ID); w.Status != spool.StatusWaiting || w.Error != "boom" {
		t.Errorf("retrying task is %s %q", w.Status, w.Error)
	}
	got = claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"x"}, Limit: 10})
	if len(got) != 1 || got[0].ID != now.ID || got[0].Attempt != 2 {
		t.Errorf("claimed %v, want the due retry on attempt 2", ids(got))
	}
}

func testClaimConcurrent(t *testing.T, s spool.Store) {
	const n = 200
	var ts []*spool.Task
	for range n {
		ts = append(ts, task("x"))
	}
	create(t, s, ts...)
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			owner := fmt.Sprint("w", w)
			for {
				now := time.Now()
				got, err := s.ClaimTasks(testCtx, &spool.ClaimParams{Owner: owner, Now: now,
					LeaseUntil: now.Add(time.Minute), Batches: []spool.ClaimBatch{{Kinds: []string{"x"}, Limit: 7}}})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, c := range got {
					if prev, dup := seen[c.ID]; dup {
						errs <- fmt.Errorf("task %s claimed by %s and %s", c.ID, prev, owner)
					}
					seen[c.ID] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != n {
		t.Errorf("%d tasks claimed, want %d", len(seen), n)
	}
}

func testCreateAndClaim(t *testing.T, s spool.Store) {
	now := time.Now()
	p := &spool.ClaimParams{Owner: "o", Now: now, LeaseUntil: now.Add(time.Minute)}
	tk := task("x")
	tk.IdempotencyKey = "once"
	got, err := s.CreateAndClaim(testCtx, tk, p)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tk.ID || got.Status != spool.StatusProcessing || got.Attempt != 1 {
		t.Errorf("CreateAndClaim = %s %s attempt %d, want the task processing on attempt 1", got.ID, got.Status, got.Attempt)
	}
	var types []spool.EventType
	for _, ev := range allEvents(t, s) {
		types = append(types, ev.Type)
	}
	if want := []spool.EventType{spool.EventCreated, spool.EventFor(spool.StatusProcessing)}; !slices.Equal(types, want) {
		t.Errorf("events %v, want %v", types, want)
	}
	// The owner holds it: its heartbeat renews it.
	if held, err := s.Heartbeat(testCtx, &spool.Instance{ID: "o", Host: "h", PID: 1, Started: now}, now.Add(time.Minute), []string{tk.ID}); err != nil || len(held) != 1 {
		t.Errorf("Heartbeat of the owner = %v, %v", held, err)
	}
	// The same idempotency key returns the first task, unclaimed again.
	again := task("x")
	again.IdempotencyKey = "once"
	got, err = s.CreateAndClaim(testCtx, again, p)
	if err != nil || got.ID != tk.ID || got.Attempt != 1 {
		t.Errorf("second CreateAndClaim with the key = %v, %v; want the first task, attempt 1", got, err)
	}
	// A task waiting for its run_at is stored, not claimed.
	later := task("x")
	later.Status, later.RunAt = spool.StatusWaiting, now.Add(time.Hour)
	if got, err := s.CreateAndClaim(testCtx, later, p); err != nil || got.Status != spool.StatusWaiting {
		t.Errorf("CreateAndClaim of a waiting task = %v, %v", got, err)
	}
}

func testEvents(t *testing.T, s spool.Store) {
	tk := task("x")
	create(t, s, tk)
	claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"x"}, Limit: 1})
	if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, Progress: 50, Owner: "o"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusCompleted, Owner: "o", Output: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	evs := allEvents(t, s)
	want := []spool.EventType{spool.EventCreated, spool.EventFor(spool.StatusProcessing), spool.EventProgress, spool.EventFor(spool.StatusCompleted)}
	var got []spool.EventType
	for i, ev := range evs {
		got = append(got, ev.Type)
		if ev.Task == nil || ev.Task.ID != tk.ID {
			t.Fatalf("event %d has task %v", i, ev.Task)
		}
		if len(ev.ID) != 30 || ev.ID[:4] != "evt_" {
			t.Errorf("event id %q is not evt_ + ULID", ev.ID)
		}
		if i > 0 && ev.ID <= evs[i-1].ID {
			t.Errorf("event ids not increasing: %s then %s", evs[i-1].ID, ev.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if evs[0].Task.Status != spool.StatusPending || evs[1].Task.Status != spool.StatusProcessing ||
		evs[2].Task.Progress != 50 || evs[3].Task.Status != spool.StatusCompleted ||
		string(evs[3].Task.Output) != "1" || evs[1].Task.Output != nil {
		t.Errorf("event snapshots do not show the task as it was at each event")
	}
	// A cursor resumes after the event it names.
	rest, err := s.Events(testCtx, evs[1].ID, 10)
	if err != nil || len(rest) != 2 || rest[0].ID != evs[2].ID {
		t.Errorf("Events after the second = %d events, %v", len(rest), err)
	}
	if last, err := s.LastEventID(testCtx); err != nil || last != evs[3].ID {
		t.Errorf("LastEventID = %q, %v; want %q", last, err, evs[3].ID)
	}
}

func testHookAtomic(t *testing.T, s spool.Store) {
	tk := task("x")
	create(t, s, tk)
	child := task("y")
	child.ParentID = tk.ID
	boom := errors.New("boom")
	_, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusCancelled,
		Hook: func(ctx context.Context, tx spool.Tx, got *spool.Task) error {
			if got.Status != spool.StatusCancelled {
				t.Errorf("hook sees status %s", got.Status)
			}
			if _, err := tx.CreateTasks(ctx, []*spool.Task{child}); err != nil {
				return err
			}
			return boom
		}})
	if !errors.Is(err, boom) {
		t.Fatalf("Apply with a failing hook = %v, want the hook's error", err)
	}
	if got := get(t, s, tk.ID); got.Status != spool.StatusPending {
		t.Errorf("after a failed hook the task is %s, want pending (rolled back)", got.Status)
	}
	if _, err := s.GetTask(testCtx, child.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("the hook's insert survived its rollback: %v", err)
	}
	if n := len(allEvents(t, s)); n != 1 {
		t.Errorf("%d events after a rolled-back change, want 1 (created)", n)
	}
	// A hook that succeeds commits with the change.
	_, err = s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusCancelled,
		Hook: func(ctx context.Context, tx spool.Tx, _ *spool.Task) error {
			_, err := tx.CreateTasks(ctx, []*spool.Task{child})
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, child.ID); got.ParentID != tk.ID {
		t.Errorf("child parent = %q", got.ParentID)
	}
}

// testHookSiblings completes many siblings at once, each hook counting the
// finished siblings inside its transaction: with group commit they may
// share a transaction, and each must see the ones before it.
func testHookSiblings(t *testing.T, s spool.Store) {
	parent := task("p")
	create(t, s, parent)
	const n = 16
	var kids []*spool.Task
	for range n {
		k := task("x")
		k.ParentID = parent.ID
		kids = append(kids, k)
	}
	create(t, s, kids...)
	claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"x"}, Limit: n})
	var mu sync.Mutex
	var counts []int
	var wg sync.WaitGroup
	for _, k := range kids {
		wg.Go(func() {
			_, err := s.Apply(testCtx, &spool.Change{ID: k.ID, To: spool.StatusCompleted, Owner: "o",
				Hook: func(ctx context.Context, tx spool.Tx, _ *spool.Task) error {
					done := 0
					for _, sib := range kids {
						st, err := tx.GetTask(ctx, sib.ID)
						if err != nil {
							return err
						}
						if st.Status == spool.StatusCompleted {
							done++
						}
					}
					mu.Lock()
					counts = append(counts, done)
					mu.Unlock()
					return nil
				}})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	slices.Sort(counts)
	for i, c := range counts {
		if c != i+1 {
			t.Fatalf("hooks saw %v finished siblings, want 1..%d each once", counts, n)
		}
	}
}

func testHeartbeatRecover(t *testing.T, s spool.Store) {
	a := &spool.Instance{ID: newID("inst_"), Host: "h", PID: 1, Started: time.Now()}
	b := &spool.Instance{ID: newID("inst_"), Host: "h", PID: 2, Started: time.Now()}
	for _, in := range []*spool.Instance{a, b} {
		if _, err := s.Heartbeat(testCtx, in, time.Now().Add(time.Minute), nil); err != nil {
			t.Fatal(err)
		}
	}
	t1, t2, t3 := task("x"), task("x"), task("x")
	t3.MaxAttempts = 1
	create(t, s, t1)
	claim(t, s, a.ID, spool.ClaimBatch{Kinds: []string{"x"}, Limit: 1})
	create(t, s, t2, t3)
	claim(t, s, b.ID, spool.ClaimBatch{Kinds: []string{"x"}, Limit: 2})
	// Only the listed tasks that a still holds are renewed and returned.
	held, err := s.Heartbeat(testCtx, a, time.Now().Add(time.Minute), []string{t1.ID, t2.ID, newID("task_")})
	if err != nil || !slices.Equal(held, []string{t1.ID}) {
		t.Errorf("Heartbeat(a) held %v, %v; want [%s]", held, err, t1.ID)
	}
	insts, err := s.Instances(testCtx)
	if err != nil || len(insts) != 2 {
		t.Fatalf("Instances = %d, %v; want 2", len(insts), err)
	}
	n, err := s.Recover(testCtx, []string{b.ID}, time.Now())
	if err != nil || n != 2 {
		t.Fatalf("Recover(b) = %d, %v; want 2", n, err)
	}
	if got := get(t, s, t1.ID); got.Status != spool.StatusProcessing {
		t.Errorf("a live instance's task is %s, want processing", got.Status)
	}
	if got := get(t, s, t2.ID); got.Status != spool.StatusPending || got.Attempt != 1 {
		t.Errorf("a dead instance's task is %s attempt %d, want pending with the attempt counted", got.Status, got.Attempt)
	}
	if got := get(t, s, t3.ID); got.Status != spool.StatusError || got.Error == "" {
		t.Errorf("a dead instance's task on its last attempt is %s %q, want error", got.Status, got.Error)
	}
	if insts, _ := s.Instances(testCtx); len(insts) != 1 || insts[0].ID != a.ID {
		t.Errorf("after Recover, instances = %v, want only a", insts)
	}
	// A task its owner no longer lists keeps its old lease.
	if held, err := s.Heartbeat(testCtx, a, time.Now().Add(-time.Second), nil); err != nil || len(held) != 0 {
		t.Fatalf("Heartbeat(a, none) = %v, %v", held, err)
	}
	if n, err := s.Recover(testCtx, nil, time.Now()); err != nil || n != 0 {
		t.Errorf("Recover before the lease ran out = %d, %v; want 0", n, err)
	}
	// An expired lease is recovered even if its owner is listed as alive.
	if _, err := s.Heartbeat(testCtx, a, time.Now().Add(-time.Second), []string{t1.ID}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Recover(testCtx, nil, time.Now()); err != nil || n != 1 {
		t.Errorf("Recover of an expired lease = %d, %v; want 1", n, err)
	}
	if err := s.RemoveInstance(testCtx, a.ID); err != nil {
		t.Fatal(err)
	}
}

func testList(t *testing.T, s spool.Store) {
	var all []*spool.Task
	base := time.Now().Add(-time.Hour)
	for i := range 25 {
		tk := task([]string{"a", "b"}[i%2])
		tk.ID = "task_" + ulid.MustNew(ulid.Timestamp(base.Add(time.Duration(i)*time.Second)), ulid.DefaultEntropy()).String()
		if i%5 == 0 {
			tk.Options = map[string]any{"ref": "r"}
		}
		all = append(all, tk)
	}
	create(t, s, all...)
	page, err := s.ListTasks(testCtx, &spool.ListParams{Limit: 10, Page: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != 10 || page.Total != 25 || page.Tasks[0].ID != all[24].ID || page.Next != all[15].ID {
		t.Errorf("first page: %d tasks, total %d, first %s, next %s", len(page.Tasks), page.Total, page.Tasks[0].ID, page.Next)
	}
	p2, _ := s.ListTasks(testCtx, &spool.ListParams{Limit: 10, After: page.Next})
	p3, _ := s.ListTasks(testCtx, &spool.ListParams{Limit: 10, Page: 2})
	if !slices.Equal(ids(p2.Tasks), ids(p3.Tasks)) || len(p2.Tasks) != 10 || p2.Tasks[0].ID != all[14].ID {
		t.Errorf("cursor and page 2 disagree: %v vs %v", ids(p2.Tasks), ids(p3.Tasks))
	}
	last, _ := s.ListTasks(testCtx, &spool.ListParams{Limit: 10, Page: 3})
	if len(last.Tasks) != 5 || last.Next != "" {
		t.Errorf("last page: %d tasks, next %q", len(last.Tasks), last.Next)
	}
	past, _ := s.ListTasks(testCtx, &spool.ListParams{Limit: 10, Page: 9})
	if len(past.Tasks) != 0 || past.Total != 25 {
		t.Errorf("page past the end: %d tasks, total %d", len(past.Tasks), past.Total)
	}
	old, _ := s.ListTasks(testCtx, &spool.ListParams{Limit: 3, Oldest: true, Kind: "a"})
	if len(old.Tasks) != 3 || old.Tasks[0].ID != all[0].ID || old.Tasks[1].ID != all[2].ID || old.Total != 13 {
		t.Errorf("oldest of kind a: %v, total %d", ids(old.Tasks), old.Total)
	}
	refd, _ := s.ListTasks(testCtx, &spool.ListParams{Limit: 100, Ref: "r"})
	if len(refd.Tasks) != 5 || refd.Total != 5 {
		t.Errorf("ref filter: %d tasks, total %d; want 5", len(refd.Tasks), refd.Total)
	}
	claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"a"}, Limit: 4})
	proc, _ := s.ListTasks(testCtx, &spool.ListParams{Limit: 100, Status: spool.StatusProcessing})
	if len(proc.Tasks) != 4 || proc.Total != 4 {
		t.Errorf("status filter: %d tasks, total %d; want 4", len(proc.Tasks), proc.Total)
	}
}

func testDelete(t *testing.T, s spool.Store) {
	tk := task("x")
	create(t, s, tk)
	if err := s.DeleteTask(testCtx, tk.ID); !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("DeleteTask(pending) = %v, want ErrInvalidTransition", err)
	}
	if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTask(testCtx, tk.ID); err != nil {
		t.Fatalf("DeleteTask(cancelled) = %v", err)
	}
	if _, err := s.GetTask(testCtx, tk.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("deleted task still readable: %v", err)
	}
	if evs := allEvents(t, s); len(evs) != 0 {
		t.Errorf("%d events left after deleting their task", len(evs))
	}
}

// Batches of every size, idempotency keys among them (one repeated inside
// the batch), keep their order, their fields, one event each, and the
// counts.
func testCreateBatches(t *testing.T, s spool.Store) {
	total := 0
	for _, n := range []int{1, 2, 63, 64, 65, 85, 200} {
		in := make([]*spool.Task, n)
		for i := range in {
			in[i] = task("x")
			in[i].URL = fmt.Sprintf("https://example.com/%d/%d", n, i)
		}
		keyed := n / 2
		in[keyed].IdempotencyKey = fmt.Sprintf("key-%d", n)
		dup := task("x")
		dup.IdempotencyKey = in[keyed].IdempotencyKey
		in = append(in, dup)
		out := create(t, s, in...)
		if len(out) != len(in) {
			t.Fatalf("batch of %d: %d tasks back", len(in), len(out))
		}
		for i := range n {
			if out[i].ID != in[i].ID {
				t.Fatalf("batch of %d: task %d is %s, want %s", len(in), i, out[i].ID, in[i].ID)
			}
			if got := get(t, s, in[i].ID); got.URL != in[i].URL || got.Kind != "x" {
				t.Fatalf("batch of %d: task %d stored as %+v", len(in), i, got)
			}
		}
		if out[n].ID != in[keyed].ID {
			t.Errorf("batch of %d: a repeated key made %s, want the first task %s", len(in), out[n].ID, in[keyed].ID)
		}
		total += n
	}
	if evs := allEvents(t, s); len(evs) != total {
		t.Errorf("%d events, want one per task: %d", len(evs), total)
	}
	st, err := s.Stats(testCtx)
	if err != nil || st.ByStatus[spool.StatusPending] != total {
		t.Errorf("Stats = %+v, %v; want %d pending", st, err, total)
	}
}

// A claim over many kinds (more than SQLite merges in one compound query)
// takes the oldest due across them, and a kind named twice counts once.
func testClaimManyKinds(t *testing.T, s spool.Store) {
	var kinds []string
	var tasks []*spool.Task
	base := time.Now().Add(-time.Hour)
	for i := range 120 {
		kind := fmt.Sprintf("k%03d", i)
		kinds = append(kinds, kind)
		tk := task(kind)
		tk.Created = base.Add(time.Duration(120-i) * time.Second) // the last kinds are the oldest
		tasks = append(tasks, tk)
	}
	create(t, s, tasks...)
	got := claim(t, s, "o", spool.ClaimBatch{Kinds: kinds, Limit: 5})
	if len(got) != 5 {
		t.Fatalf("claimed %d of 120 kinds, want 5", len(got))
	}
	for _, tk := range got {
		if tk.Kind < "k115" {
			t.Errorf("claimed %s, want the five oldest (k115-k119)", tk.Kind)
		}
	}
	a1, a2 := task("dup"), task("dup")
	create(t, s, a1, a2)
	if got := claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"dup", "dup"}, Limit: 2}); len(got) != 2 {
		t.Errorf("a kind named twice claimed %d of 2", len(got))
	}
}

// A reader whose cursor is behind many events of deleted tasks gets the
// live events after them, not an empty batch for ever.
func testEventsPastDeleted(t *testing.T, s spool.Store) {
	var doomed []*spool.Task
	for range 250 {
		doomed = append(doomed, task("x"))
	}
	create(t, s, doomed...)
	for _, tk := range doomed {
		if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusCancelled}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTask(testCtx, tk.ID); err != nil {
			t.Fatal(err)
		}
	}
	live := []*spool.Task{task("x"), task("x"), task("x")}
	create(t, s, live...)
	evs, err := s.Events(testCtx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(live) {
		t.Fatalf("%d events after 500 of deleted tasks, want the %d live ones", len(evs), len(live))
	}
	for i, ev := range evs {
		if ev.Task.ID != live[i].ID || ev.Type != spool.EventCreated {
			t.Errorf("event %d: %s of %s, want the creation of %s", i, ev.Type, ev.Task.ID, live[i].ID)
		}
	}
}

// A task with any one field set, created in one batch with plain ones (a
// store may write rows of a batch differently), reads back as written.
func testCreateEveryField(t *testing.T, s spool.Store) {
	parent := task("workflow")
	create(t, s, parent)
	asJSON := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for _, c := range []struct {
		name string
		set  func(*spool.Task)
		same func(got, want *spool.Task) bool
	}{
		{"status and run_at", func(t *spool.Task) { t.Status, t.RunAt = spool.StatusWaiting, t.Created.Add(time.Hour) },
			func(g, w *spool.Task) bool { return g.Status == w.Status && g.RunAt.Equal(w.RunAt) }},
		{"progress", func(t *spool.Task) { t.Progress = 40 }, func(g, w *spool.Task) bool { return g.Progress == 40 }},
		{"error", func(t *spool.Task) { t.Error = "not yet" }, func(g, w *spool.Task) bool { return g.Error == w.Error }},
		{"output", func(t *spool.Task) { t.Output = []byte(`{"partial":true}`) },
			func(g, w *spool.Task) bool { return string(g.Output) == string(w.Output) }},
		{"parent", func(t *spool.Task) { t.ParentID = parent.ID }, func(g, w *spool.Task) bool { return g.ParentID == parent.ID }},
		{"attempt", func(t *spool.Task) { t.Attempt = 2 }, func(g, w *spool.Task) bool { return g.Attempt == 2 }},
		{"workflow", func(t *spool.Task) {
			t.Workflow = []spool.TaskSummary{{ID: "task_child", Object: "task", Kind: "image", Status: spool.StatusPending}}
		}, func(g, w *spool.Task) bool { return asJSON(g.Workflow) == asJSON(w.Workflow) }},
		{"results", func(t *spool.Task) { t.Results = &spool.Results{Passed: []map[string]any{{"id": "a"}}, Continue: true} },
			func(g, w *spool.Task) bool { return asJSON(g.Results) == asJSON(w.Results) }},
		{"steps", func(t *spool.Task) {
			t.Steps = []spool.Step{{Kind: "image", Ref: "thumb", Options: map[string]any{"width": float64(8)}}}
		},
			func(g, w *spool.Task) bool { return asJSON(g.Steps) == asJSON(w.Steps) }},
		{"inputs and hooks", func(t *spool.Task) {
			t.CreatedBy, t.URL, t.FileID, t.WebhookURL = "me", "https://example.com/a.png", "file_x", "https://example.com/hook"
			t.Input = &spool.File{Object: "source", URL: t.URL}
			t.Options = map[string]any{"width": float64(64), "ref": "r", "folder": "f"}
		}, func(g, w *spool.Task) bool {
			return g.CreatedBy == w.CreatedBy && g.URL == w.URL && g.FileID == w.FileID && g.WebhookURL == w.WebhookURL &&
				asJSON(g.Input) == asJSON(w.Input) && asJSON(g.Options) == asJSON(w.Options)
		}},
	} {
		one := task("image")
		c.set(one)
		plain1, plain2 := task("image"), task("image")
		create(t, s, plain1, one, plain2)
		if got := get(t, s, one.ID); !c.same(got, one) {
			t.Errorf("%s: got %+v\nwant %+v", c.name, got, one)
		}
		for _, p := range []*spool.Task{plain1, plain2} {
			if g := get(t, s, p.ID); g.Status != spool.StatusPending || g.ParentID != "" || g.Progress != 0 || g.Attempt != 0 || len(g.Output) != 0 {
				t.Errorf("%s: plain task beside it: %+v", c.name, g)
			}
		}
	}
}

func testStats(t *testing.T, s spool.Store) {
	create(t, s, task("a"), task("a"), task("b"))
	claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"a"}, Limit: 1})
	st, err := s.Stats(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ByStatus[spool.StatusPending] != 2 || st.ByStatus[spool.StatusProcessing] != 1 ||
		st.ByKind["a"][spool.StatusPending] != 1 || st.ByKind["b"][spool.StatusPending] != 1 {
		t.Errorf("Stats = %+v", st)
	}
	if st.OldestPending.IsZero() || time.Since(st.OldestPending) > time.Minute {
		t.Errorf("OldestPending = %v", st.OldestPending)
	}
}

func testPruneAndCursor(t *testing.T, s spool.Store) {
	create(t, s, task("x"), task("x"), task("x"))
	evs := allEvents(t, s)
	if c, err := s.Cursor(testCtx, "c"); err != nil || c != "" {
		t.Errorf("unset cursor = %q, %v", c, err)
	}
	if err := s.SetCursor(testCtx, "c", evs[1].ID); err != nil {
		t.Fatal(err)
	}
	c, err := s.Cursor(testCtx, "c")
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := s.Events(testCtx, c, 10)
	if len(rest) != 1 || rest[0].ID != evs[2].ID {
		t.Errorf("events after the stored cursor: %d", len(rest))
	}
	// Only events older than the cutoff and at or before keepAfter go.
	n, err := s.PruneEvents(testCtx, time.Now().Add(time.Hour), evs[1].ID)
	if err != nil || n != 2 {
		t.Errorf("PruneEvents = %d, %v; want 2", n, err)
	}
	if left := allEvents(t, s); len(left) != 1 || left[0].ID != evs[2].ID {
		t.Errorf("after prune %d events left, want the undelivered one", len(left))
	}
	if n, _ := s.PruneEvents(testCtx, time.Now().Add(-time.Hour), ""); n != 0 {
		t.Errorf("pruned %d recent events", n)
	}
	// However much is pruned, a later event's id sorts after every id
	// handed out before: a reader's cursor never skips it.
	last, err := s.LastEventID(testCtx)
	if err != nil || last != evs[2].ID {
		t.Fatalf("LastEventID = %q, %v; want %q", last, err, evs[2].ID)
	}
	if _, err := s.PruneEvents(testCtx, time.Now().Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	create(t, s, task("x"))
	after, err := s.Events(testCtx, last, 10)
	if err != nil || len(after) != 1 || after[0].ID <= last {
		t.Fatalf("events after %s once all were pruned: %v, %v", last, after, err)
	}
}
