package spool

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A verdict worked out from the light reads (verdictTasks) is the one
// worked out from whole tasks, while a workflow runs and once it has
// ended: the same status, error, progress, results and summaries.
func TestWorkflowVerdictFromLightReads(t *testing.T) {
	ctx := context.Background()
	e, in := verdictEngine(t)
	release := make(chan struct{})
	released := false
	t.Cleanup(func() { // before Close, which waits for the slow step
		if !released {
			close(release)
		}
	})
	e.Register("ok", HandlerFunc(func(ctx context.Context, j *Job) error {
		return j.SetOutput(map[string]any{"step": j.Task.Step})
	}))
	e.Register("bad", HandlerFunc(func(context.Context, *Job) error { return Permanent(errors.New("boom")) }))
	e.Register("slow", HandlerFunc(func(ctx context.Context, j *Job) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}))
	var tree []Step
	if err := json.Unmarshal([]byte(`[
		{"kind": "ok", "ref": "a", "next": [{"kind": "ok", "ref": "b"}]},
		{"kind": "bad", "ref": "c", "next": [{"kind": "ok"}]},
		{"kind": "conditions", "conditions": [{"prop": "filesize", "operator": "gt", "value": "1000000"}],
			"next": [{"kind": "ok", "ref": "never"}]},
		{"kind": "conditions", "ref": "big", "conditions": [{"prop": "filesize", "operator": "gt", "value": "1"}],
			"next": [{"kind": "ok", "ref": "d"}]},
		{"kind": "slow", "ref": "s"}]`), &tree); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, Request{Kind: KindWorkflow, FileID: in.ID, Workflow: tree})
	if err != nil {
		t.Fatal(err)
	}
	s := e.store.(*sqliteStore)
	compare := func(when string) {
		t.Helper()
		err := s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
			now := time.Now().UTC()
			parent, err := tx.GetTask(ctx, wf.ID)
			if err != nil {
				return err
			}
			steps, err := tx.Steps(ctx, wf.ID)
			if err != nil {
				return err
			}
			whole := e.plan(parent, steps, now)
			lp, ls, err := tx.verdictTasks(ctx, wf.ID)
			if err != nil {
				return err
			}
			light := e.plan(lp, ls, now)
			if len(whole.create) > 0 || len(light.create) > 0 {
				t.Errorf("%s: the verdicts create steps (%d, %d)", when, len(whole.create), len(light.create))
			}
			whole.create, light.create = nil, nil
			if !reflect.DeepEqual(jsonOf(t, whole.results), jsonOf(t, light.results)) ||
				!reflect.DeepEqual(whole.summaries, light.summaries) || whole.status != light.status ||
				whole.errMsg != light.errMsg || whole.progress != light.progress {
				t.Errorf("%s: verdicts differ:\nwhole %s %q %d %s %+v\nlight %s %q %d %s %+v", when,
					whole.status, whole.errMsg, whole.progress, jsonOf(t, whole.results), whole.summaries,
					light.status, light.errMsg, light.progress, jsonOf(t, light.results), light.summaries)
			}
			if len(whole.summaries) < 6 {
				t.Errorf("%s: %d summaries, want the steps that exist (at least 6)", when, len(whole.summaries))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Everything has ended but the slow step.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		page, err := e.List(ctx, &ListParams{ParentID: wf.ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		ended := 0
		for _, st := range page.Tasks {
			if st.Status.Terminal() {
				ended++
			}
		}
		if ended == 6 { // a, b, c, the two conditions and d; nothing under c or the failed condition
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d steps ended, want 6", ended)
		}
	}
	compare("while a step runs")
	close(release)
	released = true
	done, err := e.Wait(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != StatusFailed || len(done.Results.Skipped) != 2 || len(done.Results.Passed) != 6 {
		t.Fatalf("workflow ended %s with %+v", done.Status, done.Results)
	}
	compare("after the end")
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A step's options are stored among its definition's fields, and a kind
// without a spec takes any option name: "Ref" and "Next" are options, not
// the step's ref, next steps or kind (encoding/json matches struct fields
// regardless of case, and the Kelvin sign as a k), in the verdict as in
// whole reads.
func TestWorkflowVerdictOptionsLikeFields(t *testing.T) {
	ctx := context.Background()
	e, in := verdictEngine(t)
	e.Register("ok", HandlerFunc(func(context.Context, *Job) error { return nil }))
	e.Register("bad", HandlerFunc(func(context.Context, *Job) error { return Permanent(errors.New("boom")) }))
	var tree []Step
	if err := json.Unmarshal([]byte(`[
		{"kind": "bad", "Ref": "opt", "Next": [{"kind": "ok"}]},
		{"kind": "bad", "next": [{"kind": "ok", "\u212aind": "opt"}]}]`), &tree); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, Request{Kind: KindWorkflow, FileID: in.ID, Workflow: tree})
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.Wait(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := done.Results
	if done.Status != StatusFailed || r == nil || len(r.Failed) != 2 || len(r.Skipped) != 1 || len(r.Passed) != 0 {
		t.Fatalf("workflow ended %s with %s, want failed with two failed steps and one skipped", done.Status, jsonOf(t, r))
	}
	if f := r.Failed[0]; f["ref"] != nil {
		t.Errorf("failed step %v, want no ref", f)
	}
	if s := r.Skipped[0]; s["step"] != "workflow[1].next[0]" || s["kind"] != "ok" {
		t.Errorf("skipped step %v, want workflow[1].next[0] of kind ok", s)
	}
	if done.Progress != 100 {
		t.Errorf("progress %d, want 100", done.Progress)
	}
}

// Step definitions decoded light (stepShape) give the kinds, refs and next
// steps that whole decoding (Step) gives, undecodable ones included: an
// error leaves the definitions decoded before it, in both.
func TestStepShapeDecodesLikeStep(t *testing.T) {
	for _, defs := range []string{
		`[{"kind": "a", "ref": "r", "width": 3, "next": [{"kind": "b", "next": null}]}]`,
		`[{"kind": "a", "Ref": "x", "Next": [{"kind": "b"}], "KIND": "c"}]`,
		`[{"kind": "a", "next": [{"kind": "b", "\u212aind": "c", "REF": "d"}]}]`,
		`[{"kind": "a", "next": [{"kind": "b", "k\u0131nd": "c", "k\u0130nd": "e", "\u0052ef": "d", "\u0055RL": 3}]}]`,
		`[{"kind": "a", "next": [{"kind": "b", "x": null, "y": [null]}]}]`,
		`[{"kind": "a"}, {"kind": "b", "ref": 5}, {"kind": "c"}]`,
		`[{"kind": "a"}, {"kind": 5}, {"kind": "c"}]`,
		`[{"kind": "a"}, {"kind": "b", "url": 5}, {"kind": "c"}]`,
		`[{"kind": "a"}, {"kind": "b", "next": {"kind": "c"}}, {"kind": "d"}]`,
		`[{"kind": "a"}, {"kind": "b", "next": [{"kind": "c", "ref": []}]}, {"kind": "d"}]`,
		`[{"kind": "a"}, {"kind": "b", "next": [3]}, {"kind": "d"}]`,
		`[{"kind": "a"}, null, {"kind": "d"}]`,
		`[{"kind": "a"}, 3, {"kind": "d"}]`,
		`[{"kind": "a", "next": []}]`,
		`{"kind": "a"}`,
		`[{"kind": "a"}`,
	} {
		var whole []Step
		werr := json.Unmarshal([]byte(defs), &whole)
		var shapes []stepShape
		lerr := json.Unmarshal([]byte(defs), &shapes)
		if (werr == nil) != (lerr == nil) {
			t.Errorf("%s: errors differ: whole %v, light %v", defs, werr, lerr)
		}
		if got, want := jsonOf(t, stepsOf(shapes)), jsonOf(t, stripOptions(whole)); got != want {
			t.Errorf("%s: light %s, whole %s", defs, got, want)
		}
	}
}

func stripOptions(steps []Step) []Step {
	if steps == nil {
		return nil
	}
	out := make([]Step, len(steps))
	for i, s := range steps {
		out[i] = Step{Kind: s.Kind, Ref: s.Ref, Next: stripOptions(s.Next)}
	}
	return out
}

// A step's ref is in the recorded summaries when its options are JSON
// nested deeper than SQLite's JSON functions read (1,000 levels), which
// options may be: whole reads decode them in Go.
func TestWorkflowVerdictDeepOptions(t *testing.T) {
	ctx := context.Background()
	e, in := verdictEngine(t)
	e.Register("ok", HandlerFunc(func(context.Context, *Job) error { return nil }))
	var deep any = []any{}
	for range maxOptionDepth - 1 {
		deep = []any{deep}
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, Request{Kind: KindWorkflow, FileID: in.ID,
		Workflow: []Step{{Kind: "ok", Ref: "r", Options: map[string]any{"deep": deep}}}})
	if err != nil {
		t.Fatal(err)
	}
	if done, err := e.Wait(ctx, wf.ID); err != nil || done.Status != StatusCompleted {
		t.Fatalf("workflow ended %v, %v", done, err)
	}
	stored, err := e.store.GetTask(ctx, wf.ID) // the workflow column, as recorded
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Workflow) != 1 || stored.Workflow[0].Ref != "r" {
		t.Errorf("recorded summaries %+v, want one with ref r", stored.Workflow)
	}
}

// verdictEngine opens an engine, closed when the test ends, with a stored
// input file for workflows.
func verdictEngine(t *testing.T) (*Engine, *File) {
	t.Helper()
	ctx := context.Background()
	e, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "spool.db"), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	in, err := e.CreateFile(ctx, strings.NewReader("input"), &FileParams{Filename: "in.txt"})
	if err != nil {
		t.Fatal(err)
	}
	return e, in
}
