package spooltest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/spoolrun/spool"
)

// Steps lists a workflow's steps oldest first, with their Step paths, and
// inside a transaction sees its uncommitted writes; SetResults records
// results and summaries whatever the status, and a raised progress writes
// its event.
func testStepsAndResults(t *testing.T, s spool.Store) {
	parent, other := task("workflow"), task("workflow")
	parent.Status = spool.StatusWaiting
	create(t, s, parent, other)
	var kids []*spool.Task
	for _, path := range []string{"workflow[0]", "workflow[1]", "workflow[0].next[0]"} {
		k := task("x")
		k.ParentID, k.Step = parent.ID, path
		kids = append(kids, k)
		create(t, s, k) // one at a time: ids sort by creation
	}
	stray := task("x")
	stray.ParentID = other.ID
	create(t, s, stray)

	got, err := s.Steps(testCtx, parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(kids)) {
		t.Fatalf("Steps = %v, want %v oldest first", ids(got), ids(kids))
	}
	for i, g := range got {
		if g.Step != kids[i].Step || g.ParentID != parent.ID {
			t.Errorf("step %d: Step %q parent %q", i, g.Step, g.ParentID)
		}
	}
	if n, st, err := s.UnfinishedSteps(testCtx, parent.ID); err != nil || n != 3 || st != spool.StatusWaiting {
		t.Errorf("UnfinishedSteps = %d, %s, %v; want 3, waiting", n, st, err)
	}
	if _, _, err := s.UnfinishedSteps(testCtx, newID("task_")); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("UnfinishedSteps of a missing workflow = %v, want ErrNotFound", err)
	}
	if none, err := s.Steps(testCtx, kids[0].ID); err != nil || len(none) != 0 {
		t.Errorf("Steps of a task without steps = %v, %v; want none", none, err)
	}

	// Inside a transaction: a step created in it is listed.
	late := task("x")
	late.ParentID, late.Step = parent.ID, "workflow[2]"
	claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"x"}, Limit: 1})
	_, err = s.Apply(testCtx, &spool.Change{ID: kids[0].ID, To: spool.StatusCompleted, Owner: "o",
		Hook: func(ctx context.Context, tx spool.Tx, _ *spool.Task) error {
			if _, err := tx.CreateTasks(ctx, []*spool.Task{late}); err != nil {
				return err
			}
			in, err := tx.Steps(ctx, parent.ID)
			if err != nil {
				return err
			}
			if len(in) != 4 || in[0].Status != spool.StatusCompleted {
				t.Errorf("Steps in the transaction: %d steps, first %s; want 4, the first completed", len(in), in[0].Status)
			}
			if n, _, err := tx.UnfinishedSteps(ctx, parent.ID); err != nil || n != 3 {
				t.Errorf("UnfinishedSteps in the transaction = %d, %v; want 3 (one completed, one created)", n, err)
			}
			// A count after a write sees it: a store that keeps counts
			// (the SQLite one does, between statements) must forget them.
			if _, err := tx.Apply(ctx, &spool.Change{ID: kids[1].ID, To: spool.StatusCancelled, NoResult: true}); err != nil {
				return err
			}
			if n, st, err := tx.UnfinishedSteps(ctx, parent.ID); err != nil || n != 2 || st != spool.StatusWaiting {
				t.Errorf("UnfinishedSteps after a step's cancel in the transaction = %d, %s, %v; want 2, waiting", n, st, err)
			}
			if _, err := tx.Apply(ctx, &spool.Change{ID: parent.ID, To: spool.StatusReady, NoResult: true}); err != nil {
				return err
			}
			if _, st, err := tx.UnfinishedSteps(ctx, parent.ID); err != nil || st != spool.StatusReady {
				t.Errorf("the workflow's status after its change in the transaction = %s, %v; want ready", st, err)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}

	res := &spool.Results{Passed: []map[string]any{{"id": kids[0].ID}}, Failed: []map[string]any{},
		Skipped: []map[string]any{{"step": "workflow[3]"}}, Continue: true}
	sums := []spool.TaskSummary{kids[0].Summary(), kids[1].Summary()}
	before := len(allEvents(t, s))
	if err := s.SetResults(testCtx, parent.ID, res, sums, 30); err != nil {
		t.Fatal(err)
	}
	g := get(t, s, parent.ID)
	asJSON := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	if g.Status != spool.StatusReady || g.Progress != 30 || asJSON(g.Results) != asJSON(res) || asJSON(g.Workflow) != asJSON(sums) {
		t.Errorf("after SetResults: %s %d%% results %s workflow %s", g.Status, g.Progress, asJSON(g.Results), asJSON(g.Workflow))
	}
	evs := allEvents(t, s)
	if len(evs) != before+1 || evs[len(evs)-1].Type != spool.EventProgress || evs[len(evs)-1].Task.ID != parent.ID {
		t.Errorf("SetResults raising progress wrote %d events, want one task.progress", len(evs)-before)
	}
	// nil steps keep the summaries; a lower progress keeps the progress; a
	// finished task takes results too.
	if _, err := s.Apply(testCtx, &spool.Change{ID: parent.ID, To: spool.StatusCompleted}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetResults(testCtx, parent.ID, &spool.Results{Continue: false}, nil, 10); err != nil {
		t.Fatal(err)
	}
	g = get(t, s, parent.ID)
	if g.Results == nil || g.Results.Continue || asJSON(g.Workflow) != asJSON(sums) || g.Progress != 100 {
		t.Errorf("second SetResults: results %s workflow %s progress %d", asJSON(g.Results), asJSON(g.Workflow), g.Progress)
	}
	if err := s.SetResults(testCtx, newID("task_"), res, nil, 0); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("SetResults of a missing task = %v, want ErrNotFound", err)
	}
}

// Outcomes with NoResult and a hook, applied concurrently: each hook gets
// no task, runs right after its own change (it never sees another change
// made whose hook has not run), and writes with it; a hook's error undoes
// its change and only its change.
func testHookNoResult(t *testing.T, s spool.Store) {
	const n = 24
	var kids []*spool.Task
	for range n {
		kids = append(kids, task("x"))
	}
	create(t, s, kids...)
	claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"x"}, Limit: n})
	markers := make([]*spool.Task, n)
	for i := range markers {
		markers[i] = task("marker")
	}
	var wg sync.WaitGroup
	for i, k := range kids {
		wg.Go(func() {
			_, err := s.Apply(testCtx, &spool.Change{ID: k.ID, To: spool.StatusCompleted, Owner: "o", NoResult: true,
				Hook: func(ctx context.Context, tx spool.Tx, got *spool.Task) error {
					if got != nil {
						t.Errorf("hook of a NoResult change got a task")
					}
					if now, err := tx.GetTask(ctx, k.ID); err != nil || now.Status != spool.StatusCompleted {
						t.Errorf("hook sees its task as %v, %v; want completed", now, err)
					}
					// A hook runs right after its own change: every other
					// change it sees made has had its hook run too.
					for j, sib := range kids {
						if j == i {
							continue
						}
						got, err := tx.GetTask(ctx, sib.ID)
						if err != nil {
							return err
						}
						if _, err := tx.GetTask(ctx, markers[j].ID); got.Status == spool.StatusCompleted && err != nil {
							t.Errorf("hook of task %d sees task %d completed before its hook ran", i, j)
						}
					}
					if i%5 == 3 {
						return errors.New("refused")
					}
					_, err := tx.CreateTasks(ctx, []*spool.Task{markers[i]})
					return err
				}})
			if (err != nil) != (i%5 == 3) {
				t.Errorf("Apply %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i, k := range kids {
		want := spool.StatusCompleted
		if i%5 == 3 {
			want = spool.StatusProcessing
		}
		if got := get(t, s, k.ID); got.Status != want {
			t.Errorf("task %d is %s, want %s", i, got.Status, want)
		}
		_, err := s.GetTask(testCtx, markers[i].ID)
		if (err == nil) != (i%5 != 3) {
			t.Errorf("marker of task %d: %v", i, err)
		}
	}
}
