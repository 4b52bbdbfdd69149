package spool_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
)

// dottedProber is mediaProber with metadata whose keys hold dots, as
// QuickTime's do.
func dottedProber(ctx context.Context, path string) (*spool.File, error) {
	f, err := mediaProber(ctx, path)
	if err != nil {
		return nil, err
	}
	f.Metadata = json.RawMessage(`{"title": "Big Trailer", "com.apple.quicktime.make": "Apple", "exif": {"Make": "Canon"}}`)
	return f, nil
}

// Found in review: a conditions prop was cut at its first dot, so a step
// whose ref (or custom kind) held a dot could never be named
// ("mod.v2.detected" read the field v2.detected of a step mod), and a
// metadata key with dots (com.apple.quicktime.make) was read as nested
// objects.
func TestConditionDottedNames(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{Prober: spool.ProberFunc(dottedProber)})
	in, err := e.CreateFile(ctx, strings.NewReader("not really a video"), &spool.FileParams{Filename: "in.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	outputs := map[string]any{
		"mod":    map[string]any{"label": "old", "v2": map[string]any{"detected": false}},
		"mod.v2": map[string]any{"detected": true, "scores": map[string]any{"nudity": 0.9}},
	}
	e.Register("a", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		ref, _ := job.String("ref")
		return job.SetOutput(outputs[ref])
	}))
	e.Register("acme.scan", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		return job.SetOutput(map[string]any{"score": 3})
	}))
	e.Register("b", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		rec.ran("b")
		// Upstream picks the step a condition's prop names.
		if up, err := job.Upstream(ctx, "mod.v2"); err != nil || up.Step != "workflow[0].next[0]" {
			rec.errorf("upstream mod.v2 = %v, %v; want workflow[0].next[0]", up, err)
		}
		if up, err := job.Upstream(ctx, "acme.scan"); err != nil || up.Kind != "acme.scan" {
			rec.errorf("upstream acme.scan = %v, %v", up, err)
		}
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: parseSteps(t, `[
		{"kind": "a", "ref": "mod", "next": [
			{"kind": "a", "ref": "mod.v2", "next": [
				{"kind": "acme.scan", "next": [
					{"kind": "conditions", "ref": "check", "conditions": [
						{"prop": "mod.v2.detected", "value": true},
						{"prop": "mod.v2.scores.nudity", "operator": "gt", "value": 0.5},
						{"prop": "mod.label", "value": "old"},
						{"prop": "acme.scan.score", "value": 3},
						{"prop": "metadata.com.apple.quicktime.make", "value": "Apple"},
						{"prop": "metadata.exif.Make", "value": "Canon"},
						{"prop": "metadata.title", "value": "Big Trailer"}],
					 "next": [{"kind": "b"}]}]}]}]}]`)})
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.Wait(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.check(t)
	if done.Status != spool.StatusCompleted {
		t.Fatalf("workflow %s (%s), want completed", done.Status, done.Error)
	}
	page, err := e.List(ctx, &spool.ListParams{ParentID: wf.ID, Ref: "check"})
	if err != nil || len(page.Tasks) != 1 {
		t.Fatalf("list the conditions step: %v %v", page, err)
	}
	if r := page.Tasks[0].Results; r == nil || len(r.Failed) != 0 || len(r.Passed) != 7 {
		t.Fatalf("conditions results = %+v, want all 7 passed", r)
	}
	if rec.runs["b"] != 1 {
		t.Errorf("the step after the conditions ran %d times, want 1", rec.runs["b"])
	}
}

// A prop naming a dotted ref or kind is valid at Create exactly when an
// earlier step of its chain has that ref or kind.
func TestConditionDottedNamesAtCreate(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	e.Register("a", produce(&recorder{}, "", "", nil))
	e.Register("acme.scan", produce(&recorder{}, "", "", nil))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cond := func(prop string) string {
		return `{"kind": "conditions", "conditions": [{"prop": "` + prop + `", "value": "1"}]}`
	}
	tests := []struct {
		name, tree, reason string
	}{
		{"dotted ref", `[{"kind": "a", "ref": "mod.v2", "next": [` + cond("mod.v2.detected") + `]}]`, ""},
		{"dotted kind", `[{"kind": "acme.scan", "next": [` + cond("acme.scan.score") + `]}]`, ""},
		{"dotted ref, nested field", `[{"kind": "a", "ref": "mod.v2", "next": [` + cond("mod.v2.scores.nudity") + `]}]`, ""},
		{"dotted metadata key", `[` + cond("metadata.com.apple.quicktime.make") + `]`, ""},
		{"no such dotted ref", `[{"kind": "a", "ref": "mod.v2", "next": [` + cond("mod.v3.detected") + `]}]`, "unknown prop"},
		{"dotted ref without a field", `[{"kind": "a", "ref": "mod.v2", "next": [` + cond("mod.v2") + `]}]`, "unknown prop"},
		{"a dotted ref's first part", `[{"kind": "a", "ref": "mod.v2", "next": [` + cond("mod.detected") + `]}]`, "unknown prop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: parseSteps(t, tt.tree)})
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Create = %v, want it accepted", err)
				}
				return
			}
			var ve *spool.ValidationError
			if !errors.As(err, &ve) || !strings.HasSuffix(ve.Field, ".conditions[0].prop") || !strings.Contains(ve.Reason, tt.reason) {
				t.Fatalf("Create = %v; want the prop refused with %q", err, tt.reason)
			}
		})
	}
}
