package spooltest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

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
		if _, err := s.DeleteTask(testCtx, tk.ID); err != nil {
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

func testPruneAndCursor(t *testing.T, s spool.Store) {
	create(t, s, task("x"), task("x"), task("x"), task("x"))
	evs := allEvents(t, s)
	if c, err := s.Cursor(testCtx, "c"); err != nil || c != "" {
		t.Errorf("unset cursor = %q, %v", c, err)
	}
	setCursor := func(name, id string) {
		t.Helper()
		if err := s.SetCursor(testCtx, name, id); err != nil {
			t.Fatal(err)
		}
	}
	setCursor("c", evs[2].ID)
	setCursor("d", evs[0].ID)
	c, err := s.Cursor(testCtx, "c")
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := s.Events(testCtx, c, 10)
	if len(rest) != 1 || rest[0].ID != evs[3].ID {
		t.Errorf("events after the stored cursor: %d", len(rest))
	}
	// Every stored cursor holds the events it has not read: only what the
	// slowest one has passed goes.
	n, err := s.PruneEvents(testCtx, time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Errorf("PruneEvents = %d, %v; want 1 (only what cursor d has read)", n, err)
	}
	if left := allEvents(t, s); len(left) != 3 || left[0].ID != evs[1].ID {
		t.Errorf("after prune %d events left, want the 3 that cursor d has not read", len(left))
	}
	// A cursor never moves backwards.
	setCursor("d", evs[2].ID)
	setCursor("c", evs[1].ID)
	if c, err := s.Cursor(testCtx, "c"); err != nil {
		t.Fatal(err)
	} else if rest, _ := s.Events(testCtx, c, 10); len(rest) != 1 || rest[0].ID != evs[3].ID {
		t.Errorf("cursor set backwards moved: %d events after it, want 1", len(rest))
	}
	if n, _ := s.PruneEvents(testCtx, time.Now().Add(-time.Hour)); n != 0 {
		t.Errorf("pruned %d recent events", n)
	}
	n, err = s.PruneEvents(testCtx, time.Now().Add(time.Hour))
	if err != nil || n != 2 {
		t.Errorf("PruneEvents = %d, %v; want 2", n, err)
	}
	if left := allEvents(t, s); len(left) != 1 || left[0].ID != evs[3].ID {
		t.Errorf("after prune %d events left, want the undelivered one", len(left))
	}
	// However much is pruned, a later event's id sorts after every id
	// handed out before: a reader's cursor never skips it.
	for _, name := range []string{"c", "d", "never set"} {
		if err := s.DeleteCursor(testCtx, name); err != nil {
			t.Fatalf("DeleteCursor(%q): %v", name, err)
		}
	}
	if c, err := s.Cursor(testCtx, "c"); err != nil || c != "" {
		t.Errorf("deleted cursor = %q, %v", c, err)
	}
	last, err := s.LastEventID(testCtx)
	if err != nil || last != evs[3].ID {
		t.Fatalf("LastEventID = %q, %v; want %q", last, err, evs[3].ID)
	}
	if _, err := s.PruneEvents(testCtx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	create(t, s, task("x"))
	after, err := s.Events(testCtx, last, 10)
	if err != nil || len(after) != 1 || after[0].ID <= last {
		t.Fatalf("events after %s once all were pruned: %v, %v", last, after, err)
	}
}
