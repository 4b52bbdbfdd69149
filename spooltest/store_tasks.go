package spooltest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spoolrun/spool"
)

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
	// A number may come back int64 or float64: the engine gives options
	// their declared types.
	if w := got.Options["width"]; w != int64(320) && w != float64(320) || got.Options["ref"] != "thumb" {
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
	if _, err := s.DeleteTask(testCtx, newID("task_")); !errors.Is(err, spool.ErrNotFound) {
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
	if _, err := s.DeleteTask(testCtx, tk.ID); !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("DeleteTask(pending) = %v, want ErrInvalidTransition", err)
	}
	if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTask(testCtx, tk.ID); err != nil {
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
		// The same request again: a store may refuse a key used for a
		// different one (Tx.CreateTasks).
		dup.IdempotencyKey, dup.URL = in[keyed].IdempotencyKey, in[keyed].URL
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

// A task with any one field set, created in one batch with plain ones (a
// store may write rows of a batch differently), reads back as written.
func testCreateEveryField(t *testing.T, s spool.Store) {
	parent := task("workflow")
	create(t, s, parent)
	input := file("")
	createFiles(t, s, input)
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
		{"step", func(t *spool.Task) { t.ParentID, t.Step = parent.ID, "workflow[0].next[1]" },
			func(g, w *spool.Task) bool { return g.Step == "workflow[0].next[1]" }},
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
			t.CreatedBy, t.URL, t.FileID, t.WebhookURL = "me", "https://example.com/a.png", input.ID, "https://example.com/hook"
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
	a, b := st.OldestPendingByKind["a"], st.OldestPendingByKind["b"]
	if len(st.OldestPendingByKind) != 2 || a.IsZero() || b.IsZero() || a.After(b) ||
		!st.OldestPending.Equal(a) {
		// The second a (the first is processing) was created before b.
		t.Errorf("OldestPendingByKind = %v, OldestPending = %v", st.OldestPendingByKind, st.OldestPending)
	}
}
