package spool_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// mediaProber stands in for ffprobe: every file is a 90-second 1280×720
// video with one metadata key.
func mediaProber(_ context.Context, path string) (*spool.File, error) {
	f, err := spool.BasicProber().Probe(context.Background(), path)
	if err != nil {
		return nil, err
	}
	f.Kind, f.Duration, f.Width, f.Height, f.Codec = "video", 90, 1280, 720, "h264"
	f.Metadata = json.RawMessage(`{"title": "Big Trailer", "tags": ["a", "b"]}`)
	return f, nil
}

// openWorkflowEngine opens an engine with the stand-in prober and an
// uploaded input file.
func openWorkflowEngine(t *testing.T, cfg spool.Config) (*spool.Engine, *spool.File) {
	t.Helper()
	cfg.Prober = spool.ProberFunc(mediaProber)
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	e := openFile(t, cfg)
	f, err := e.CreateFile(ctxT(t), strings.NewReader("not really a video"), &spool.FileParams{Filename: "in.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	return e, f
}

// issueTree is the workflow of the request shape in the docs.
const issueTree = `[
  { "kind": "video", "width": 1280, "ref": "web",
    "next": [ { "kind": "speech", "ref": "words", "next": [ { "kind": "subtitles", "format": "vtt" } ] },
              { "kind": "thumbnails", "count": 9 } ] },
  { "kind": "conditions",
    "conditions": [ { "prop": "duration", "operator": "gt", "value": "60" } ],
    "next": [ { "kind": "chapters" } ] },
  { "kind": "http", "url": "https://hooks.example.com/done", "method": "POST" }
]`

func parseSteps(t *testing.T, s string) []spool.Step {
	t.Helper()
	var steps []spool.Step
	if err := json.Unmarshal([]byte(s), &steps); err != nil {
		t.Fatal(err)
	}
	return steps
}

// recorder notes, per kind, what each stand-in handler saw.
type recorder struct {
	mu   sync.Mutex
	errs []string
	runs map[string]int
}

func (r *recorder) errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) ran(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runs == nil {
		r.runs = map[string]int{}
	}
	r.runs[kind]++
}

func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
}

// produce is a stand-in handler that checks its input with want and
// writes an output file.
func produce(rec *recorder, object, name string, want func(ctx context.Context, job *spool.Job) error) spool.HandlerFunc {
	return func(ctx context.Context, job *spool.Job) error {
		rec.ran(job.Task.Kind)
		if want != nil {
			if err := want(ctx, job); err != nil {
				rec.errorf("%s (%s): %v", job.Task.Kind, job.Task.Step, err)
			}
		}
		if name == "" {
			return nil
		}
		_, err := job.CreateFile(ctx, strings.NewReader(job.Task.Kind+" output"), &spool.File{Object: object, Filename: name})
		return err
	}
}

func inputIs(job *spool.Job, id string) error {
	if in := job.Input(); in == nil || in.ID != id {
		return fmt.Errorf("input = %+v, want file %s", in, id)
	}
	return nil
}

// stepOutput returns the id of the file a step produced.
func stepOutput(t *testing.T, e *spool.Engine, parent, ref string) string {
	t.Helper()
	page, err := e.List(ctxT(t), &spool.ListParams{ParentID: parent, Ref: ref})
	if err != nil || len(page.Tasks) != 1 {
		t.Fatalf("list steps with ref %s: %v %v", ref, page, err)
	}
	var f spool.File
	if err := json.Unmarshal(page.Tasks[0].Output, &f); err != nil {
		t.Fatal(err)
	}
	return f.ID
}

func TestWorkflowRunsTree(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	rec := &recorder{}
	var mu sync.Mutex
	inID, videoOut, speechOut := in.ID, "", ""
	// chain is a stand-in handler that checks its input is the file *want
	// and writes a file, whose id it keeps in *out.
	chain := func(kind, object, name string, want, out *string, check func(*spool.Job)) spool.HandlerFunc {
		return func(ctx context.Context, job *spool.Job) error {
			rec.ran(kind)
			mu.Lock()
			w := *want
			mu.Unlock()
			if err := inputIs(job, w); err != nil {
				rec.errorf("%s: %v", kind, err)
			}
			if check != nil {
				check(job)
			}
			f, err := job.CreateFile(ctx, strings.NewReader(kind+" output"), &spool.File{Object: object, Filename: name})
			if err != nil {
				return err
			}
			mu.Lock()
			*out = f.ID
			mu.Unlock()
			return nil
		}
	}
	e.Register("video", chain("video", "", "web.mp4", &inID, &videoOut, func(job *spool.Job) {
		if w, _ := job.Int("width"); w != 1280 {
			rec.errorf("video: width = %d", w)
		}
	}))
	e.Register("speech", chain("speech", "intelligence", "words.txt", &videoOut, &speechOut, nil))
	e.Register("subtitles", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		rec.ran("subtitles")
		mu.Lock()
		want := speechOut
		mu.Unlock()
		if err := inputIs(job, want); err != nil {
			rec.errorf("subtitles: %v", err)
		}
		words, err := job.Upstream(ctx, "words")
		if err != nil {
			rec.errorf("subtitles: upstream words: %v", err)
		} else if !strings.Contains(string(words.Output), want) || words.Kind != "speech" {
			rec.errorf("subtitles: upstream words = %s %s, want the speech output %s", words.Kind, words.Output, want)
		}
		if video, err := job.Upstream(ctx, "video"); err != nil || video.Step != "workflow[0]" {
			rec.errorf("subtitles: upstream by kind video = %v, %v", video, err)
		}
		if _, err := job.Upstream(ctx, "thumbnails"); !errors.Is(err, spool.ErrNotFound) {
			rec.errorf("subtitles: upstream thumbnails (a sibling branch) = %v, want ErrNotFound", err)
		}
		if f, _ := job.String("format"); f != "vtt" {
			rec.errorf("subtitles: format = %q", f)
		}
		_, err = job.CreateFile(ctx, strings.NewReader("WEBVTT"), &spool.File{Object: "track", Filename: "subs.vtt"})
		return err
	}))
	e.Register("thumbnails", produce(rec, "track", "thumbs.vtt", func(ctx context.Context, job *spool.Job) error {
		mu.Lock()
		defer mu.Unlock()
		if n, _ := job.Int("count"); n != 9 {
			return fmt.Errorf("count = %d", n)
		}
		return inputIs(job, videoOut)
	}))
	e.Register("chapters", produce(rec, "track", "chapters.json", func(ctx context.Context, job *spool.Job) error {
		return inputIs(job, in.ID) // the conditions step's input, passed on
	}))
	e.Register("http", produce(rec, "", "", func(ctx context.Context, job *spool.Job) error {
		if job.Input() != nil || job.Task.URL != "https://hooks.example.com/done" {
			return fmt.Errorf("input %+v, url %q: want no input and the hook's url", job.Input(), job.Task.URL)
		}
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, WebhookURL: "https://example.com/hook",
		Workflow: parseSteps(t, issueTree)})
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.Wait(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.check(t)
	if done.Status != spool.StatusCompleted || done.Progress != 100 {
		t.Fatalf("workflow %s %d%% (%s), want completed 100%%", done.Status, done.Progress, done.Error)
	}
	for _, k := range []string{"video", "speech", "subtitles", "thumbnails", "chapters", "http"} {
		if rec.runs[k] != 1 {
			t.Errorf("%s ran %d times, want 1", k, rec.runs[k])
		}
	}
	wantSteps := map[string]string{"workflow[0]": "video", "workflow[0].next[0]": "speech",
		"workflow[0].next[0].next[0]": "subtitles", "workflow[0].next[1]": "thumbnails",
		"workflow[1]": "conditions", "workflow[1].next[0]": "chapters", "workflow[2]": "http"}
	if len(done.Workflow) != len(wantSteps) {
		t.Fatalf("workflow lists %d steps, want %d: %+v", len(done.Workflow), len(wantSteps), done.Workflow)
	}
	for _, s := range done.Workflow {
		if wantSteps[s.Step] != s.Kind || s.Status != spool.StatusCompleted || s.ParentID == nil || *s.ParentID != wf.ID {
			t.Errorf("summary %+v: want kind %s completed under %s", s, wantSteps[s.Step], wf.ID)
		}
	}
	if r := done.Results; r == nil || len(r.Passed) != 7 || len(r.Failed) != 0 || len(r.Skipped) != 0 || !r.Continue {
		t.Fatalf("results = %+v", done.Results)
	}
	page, err := e.List(ctx, &spool.ListParams{ParentID: wf.ID, Limit: 100})
	if err != nil || page.Total != 7 {
		t.Fatalf("List(ParentID) = %d tasks, %v; want 7", page.Total, err)
	}
	for _, s := range page.Tasks {
		if s.ParentID != wf.ID || s.WebhookURL != "https://example.com/hook" {
			t.Errorf("step %s: parent %q webhook %q; want the workflow's", s.Step, s.ParentID, s.WebhookURL)
		}
		if s.Kind == "conditions" && (s.Results == nil || !s.Results.Continue || len(s.Results.Passed) != 1) {
			t.Errorf("conditions results = %+v", s.Results)
		}
	}
	if id := stepOutput(t, e, wf.ID, "words"); id == "" {
		t.Error("speech step has no output file")
	}
	// The JSON shape: summaries carry ref and step.
	b, _ := json.Marshal(done)
	if !strings.Contains(string(b), `"step":"workflow[0].next[0]"`) || !strings.Contains(string(b), `"ref":"words"`) {
		t.Errorf("workflow JSON lacks step paths or refs: %s", b)
	}
}

func TestConditionOperators(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cond map[string]any
		want bool
	}{
		{"eq default operator", map[string]any{"prop": "kind", "value": "video"}, true},
		{"eq string differs", map[string]any{"prop": "kind", "value": "audio"}, false},
		{"eq numeric forms", map[string]any{"prop": "duration", "value": "90.0"}, true},
		{"ne", map[string]any{"prop": "codec", "operator": "ne", "value": "vp9"}, true},
		{"gt numbers not strings", map[string]any{"prop": "width", "operator": "gt", "value": "999.5"}, true},
		{"lt numbers not strings", map[string]any{"prop": "width", "operator": "lt", "value": "1000"}, false},
		{"gte equal", map[string]any{"prop": "height", "operator": "gte", "value": 720}, true},
		{"lte", map[string]any{"prop": "duration", "operator": "lte", "value": "89"}, false},
		{"gt strings", map[string]any{"prop": "codec", "operator": "gt", "value": "h263"}, true},
		{"in list", map[string]any{"prop": "kind", "operator": "in", "value": []any{"audio", "video"}}, true},
		{"in comma string", map[string]any{"prop": "width", "operator": "in", "value": "640, 1280"}, true},
		{"in miss", map[string]any{"prop": "kind", "operator": "in", "value": "audio,image"}, false},
		{"contains", map[string]any{"prop": "metadata.title", "operator": "contains", "value": "Trailer"}, true},
		{"contains is case-sensitive", map[string]any{"prop": "metadata.title", "operator": "contains", "value": "trailer"}, false},
		{"contains in a list", map[string]any{"prop": "metadata.tags", "operator": "contains", "value": "b"}, true},
		{"exists", map[string]any{"prop": "metadata.title", "operator": "exists"}, true},
		{"exists false on absent", map[string]any{"prop": "language", "operator": "exists", "value": "false"}, true},
		{"exists true on absent", map[string]any{"prop": "language", "operator": "exists", "value": true}, false},
		{"absent prop fails eq", map[string]any{"prop": "language", "value": "en"}, false},
		{"absent prop fails ne", map[string]any{"prop": "language", "operator": "ne", "value": "en"}, false},
		{"absent metadata key", map[string]any{"prop": "metadata.nope", "operator": "ne", "value": "x"}, false},
		{"false is not absent", map[string]any{"prop": "animated", "value": false}, true},
		{"false as a string", map[string]any{"prop": "transparency", "value": "false"}, true},
		{"rotation 0 of a video", map[string]any{"prop": "rotation", "operator": "lt", "value": "90"}, true},
		{"empty operator is eq", map[string]any{"prop": "kind", "operator": "", "value": "video"}, true},
		// Found in review: ParseFloat's "NaN" equalled every number, and Go's
		// number forms counted.
		{"NaN is no number", map[string]any{"prop": "duration", "value": "NaN"}, false},
		{"underscores are no number", map[string]any{"prop": "width", "value": "1_280"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task, err := e.Create(ctx, spool.Request{Kind: "conditions", FileID: in.ID,
				Options: map[string]any{"conditions": []any{tt.cond}}})
			if err != nil {
				t.Fatal(err)
			}
			done, err := e.Wait(ctx, task.ID)
			if err != nil || done.Status != spool.StatusCompleted {
				t.Fatalf("conditions task: %v %v %s", done, err, done.Error)
			}
			if r := done.Results; r == nil || r.Continue != tt.want || len(r.Passed)+len(r.Failed) != 1 {
				t.Fatalf("results = %+v, want continue %t", r, tt.want)
			}
		})
	}
}

func TestConditionSkipsBranch(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	rec := &recorder{}
	for _, k := range []string{"a", "b", "c"} {
		e.Register(k, produce(rec, "", "", nil))
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: parseSteps(t, `[
		{"kind": "a", "ref": "first", "next": [
			{"kind": "conditions", "conditions": [{"prop": "duration", "operator": "lt", "value": "60"}],
			 "next": [{"kind": "b", "next": [{"kind": "b"}]}]},
			{"kind": "conditions", "conditions": [{"prop": "first.nothing", "operator": "exists", "value": false}],
			 "next": [{"kind": "c"}]}]}]`)})
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
	if rec.runs["b"] != 0 || rec.runs["c"] != 1 {
		t.Errorf("runs = %v: want b skipped by its failed condition and c run", rec.runs)
	}
	var skipped []string
	for _, s := range done.Results.Skipped {
		skipped = append(skipped, s["step"].(string))
		if !strings.Contains(s["reason"].(string), "conditions of workflow[0].next[0] did not all pass") {
			t.Errorf("skip reason %q", s["reason"])
		}
	}
	if want := []string{"workflow[0].next[0].next[0]", "workflow[0].next[0].next[0].next[0]"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %v, want %v", skipped, want)
	}
	if !done.Results.Continue || len(done.Results.Passed) != 4 {
		t.Errorf("results = %+v", done.Results)
	}
}

func TestWorkflowFailingStep(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	rec := &recorder{}
	release := make(chan struct{})
	e.Register("bad", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		rec.ran("bad")
		return spool.Permanent(errors.New("boom"))
	}))
	e.Register("after", produce(rec, "", "", nil))
	e.Register("slow", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		rec.ran("slow")
		<-release
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: parseSteps(t, `[
		{"kind": "bad", "next": [{"kind": "after"}]}, {"kind": "slow"}]`)})
	if err != nil {
		t.Fatal(err)
	}
	// The failed step does not end the workflow while its sibling runs.
	waitFor(t, func() bool {
		page, _ := e.List(ctx, &spool.ListParams{ParentID: wf.ID, Status: spool.StatusFailed})
		return page != nil && page.Total == 1
	})
	if got, _ := e.Get(ctx, wf.ID); got.Status != spool.StatusWaiting {
		t.Fatalf("workflow is %s while a step still runs, want waiting", got.Status)
	}
	close(release)
	done, err := e.Wait(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != spool.StatusFailed || done.Error != "workflow[0] (bad): boom" {
		t.Fatalf("workflow %s %q, want failed \"workflow[0] (bad): boom\"", done.Status, done.Error)
	}
	if rec.runs["after"] != 0 {
		t.Error("the failed step's next ran")
	}
	r := done.Results
	if r.Continue || len(r.Failed) != 1 || len(r.Passed) != 1 || len(r.Skipped) != 1 ||
		r.Skipped[0]["step"] != "workflow[0].next[0]" || r.Skipped[0]["reason"] != "workflow[0] (bad) ended failed" {
		t.Errorf("results = %+v", r)
	}
}

func TestWorkflowStepErrorEndsError(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{MaxAttempts: 2})
	e.Register("flaky", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		return errors.New("down")
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: []spool.Step{{Kind: "flaky"}}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.Wait(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != spool.StatusError || done.Error != "workflow[0] (flaky): down" {
		t.Fatalf("workflow %s %q, want error naming the step", done.Status, done.Error)
	}
}

func TestWorkflowCancel(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{KindConcurrency: map[string]int{"block": 1}})
	rec := &recorder{}
	started := make(chan string, 10)
	causes := make(chan error, 10)
	e.Register("block", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		rec.ran("block")
		started <- job.Task.ID
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return ctx.Err()
	}))
	e.Register("after", produce(rec, "", "", nil))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: parseSteps(t, `[
		{"kind": "block", "next": [{"kind": "after"}]}, {"kind": "block", "next": [{"kind": "after"}]}]`)})
	if err != nil {
		t.Fatal(err)
	}
	<-started // one runs; the other waits for the kind's only worker
	got, err := e.Cancel(ctx, wf.ID)
	if err != nil || got.Status != spool.StatusCancelled {
		t.Fatalf("cancel = %v, %v", got, err)
	}
	select {
	case cause := <-causes:
		if !errors.Is(cause, spool.ErrCancelled) {
			t.Errorf("running step's cause = %v, want ErrCancelled", cause)
		}
	case <-ctx.Done():
		t.Fatal("the running step was not cancelled")
	}
	time.Sleep(200 * time.Millisecond) // time for anything wrongly started to start
	page, err := e.List(ctx, &spool.ListParams{ParentID: wf.ID})
	if err != nil || page.Total != 2 {
		t.Fatalf("steps = %v, %v; want the 2 top-level ones", page, err)
	}
	for _, s := range page.Tasks {
		if s.Status != spool.StatusCancelled {
			t.Errorf("step %s is %s, want cancelled", s.Step, s.Status)
		}
	}
	if rec.runs["block"] != 1 || rec.runs["after"] != 0 {
		t.Errorf("runs = %v: want one block run and nothing after the cancel", rec.runs)
	}
	final, _ := e.Get(ctx, wf.ID)
	if r := final.Results; r == nil || len(r.Skipped) != 2 || len(r.Failed) != 2 || r.Skipped[0]["reason"] != "the workflow was cancelled" {
		t.Errorf("results = %+v", final.Results)
	}
}

func TestWorkflowInvalidTrees(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	e.Register("a", produce(&recorder{}, "", "", nil))
	e.Register("http", produce(&recorder{}, "", "", nil))
	e.Register("ingest", produce(&recorder{}, "", "", nil))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deep := `{"kind": "a"}`
	for range 10 {
		deep = `{"kind": "a", "next": [` + deep + `]}`
	}
	many := strings.Repeat(`{"kind": "a"},`, 100) + `{"kind": "a"}`
	tests := []struct {
		name, tree, field, reason string
		noInput                   bool
	}{
		{"unknown kind deep", `[{"kind": "a", "next": [{"kind": "a", "next": [{"kind": "teleport"}]}]}]`, "workflow[0].next[0].next[0].kind", "unknown kind", false},
		{"unavailable kind", `[{"kind": "a", "next": [{"kind": "video"}]}]`, "workflow[0].next[0].kind", "cannot run here", false},
		{"bad operator", `[{"kind": "a"}, {"kind": "conditions", "conditions": [{"prop": "kind", "operator": "like", "value": "v"}]}]`, "workflow[1].conditions[0].operator", "must be one of", false},
		{"unknown prop", `[{"kind": "conditions", "conditions": [{"prop": "colour", "value": "red"}]}]`, "workflow[0].conditions[0].prop", "unknown prop", false},
		{"ref to no earlier step", `[{"kind": "a", "ref": "x"}, {"kind": "conditions", "conditions": [{"prop": "x.detected", "value": "true"}]}]`, "workflow[1].conditions[0].prop", "no step comes before", false},
		{"ref to a later step", `[{"kind": "a", "next": [{"kind": "conditions", "conditions": [{"prop": "y.z", "value": "1"}], "next": [{"kind": "a", "ref": "y"}]}]}]`, "workflow[0].next[0].conditions[0].prop", "no earlier step in this chain", false},
		{"too deep", `[` + deep + `]`, "workflow[0].next[0].next[0].next[0].next[0].next[0].next[0].next[0].next[0].next[0].next", "nested deeper than 10", false},
		{"too many", `[` + many + `]`, "workflow", "more than 100 steps", false},
		{"url on a media step", `[{"kind": "a", "url": "https://example.com/x.mp4"}]`, "workflow[0].url", "takes its input from the workflow", false},
		{"http without url", `[{"kind": "http"}]`, "workflow[0].url", "is required", false},
		{"http to loopback", `[{"kind": "http", "url": "http://127.0.0.1/x"}]`, "workflow[0].url", "not a public address", false},
		{"workflow field on a step", `[{"kind": "a", "webhook_url": "https://example.com/h"}]`, "workflow[0].webhook_url", "field of the workflow request", false},
		{"bad filename", `[{"kind": "a", "filename": "a/b"}]`, "workflow[0].filename", "must be a name without slashes", false},
		{"no input", `[{"kind": "a"}]`, "url", "kind workflow needs an input", true},
		{"input after http", `[{"kind": "http", "url": "https://example.com/x", "next": [{"kind": "ingest"}]}]`, "workflow[0].next[0].kind", "the http step before it makes none", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := spool.Request{Kind: "workflow", FileID: in.ID}
			if tt.noInput {
				req.FileID = ""
			}
			if err := json.Unmarshal([]byte(tt.tree), &req.Workflow); err != nil {
				t.Fatal(err)
			}
			_, err := e.Create(ctx, req)
			var ve *spool.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(ve.Reason, tt.reason) {
				t.Fatalf("Create = %v; want field %s, reason containing %q", err, tt.field, tt.reason)
			}
		})
	}
	page, err := e.List(ctx, nil)
	if err != nil || page.Total != 0 {
		t.Errorf("%d tasks stored after refused creates, want 0", page.Total)
	}
}

// waitFor polls ok until it holds, or fails the test after a generous
// deadline.
func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWorkflowURLInputFetchedOnce(t *testing.T) {
	ctx := ctxT(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "remote bytes")
	}))
	t.Cleanup(srv.Close)
	e, _ := openWorkflowEngine(t, spool.Config{AllowPrivateNetworks: true})
	rec := &recorder{}
	inputs := make(chan string, 4)
	e.Register("a", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		inputs <- job.Input().ID
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", URL: srv.URL + "/in.mp4", Workflow: parseSteps(t, `[
		{"kind": "a"},
		{"kind": "conditions", "conditions": [{"prop": "duration", "operator": "gt", "value": "60"}], "next": [{"kind": "a"}]}]`)})
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.Wait(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.check(t)
	if done.Status != spool.StatusCompleted || done.Input == nil || done.Input.ID == "" || done.Input.Duration != 90 {
		t.Fatalf("workflow %s, input %+v: want completed with the fetched, probed file", done.Status, done.Input)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the url was fetched %d times, want once", n)
	}
	for range 2 {
		if id := <-inputs; id != done.Input.ID {
			t.Errorf("a step got input %s, want the workflow's fetched file %s", id, done.Input.ID)
		}
	}
}

func TestWorkflowRepairAfterRecover(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{MaxAttempts: 1, AcceptUnavailableKinds: true,
		EventRetention: 10 * time.Second, LeaseDuration: time.Second, HeartbeatInterval: 50 * time.Millisecond})
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// nsfw has no handler here: another engine would run it.
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID,
		Workflow: []spool.Step{{Kind: "nsfw", Next: []spool.Step{{Kind: "nsfw"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var claimed []*spool.Task
	waitFor(t, func() bool {
		claimed, err = e.Store().ClaimTasks(ctx, &spool.ClaimParams{Owner: "inst_gone", Now: time.Now(),
			Lease: time.Millisecond, Batches: []spool.ClaimBatch{{Kinds: []string{"nsfw"}, Limit: 1}}})
		return err == nil && len(claimed) == 1
	})
	// The lease runs out on the last attempt: the store ends the step in
	// error with no hook, and the maintenance loop advances the workflow.
	done, err := e.Wait(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != spool.StatusError || !strings.HasPrefix(done.Error, "workflow[0] (nsfw): ") ||
		len(done.Results.Skipped) != 1 {
		t.Fatalf("workflow %s %q %+v: want error naming the step, its next skipped", done.Status, done.Error, done.Results)
	}
}

func TestWorkflowStepDeletedOnlyWithWorkflow(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	release := make(chan struct{})
	e.Register("a", produce(&recorder{}, "", "", nil))
	e.Register("slow", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		<-release
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID,
		Workflow: []spool.Step{{Kind: "a", Ref: "first", Next: []spool.Step{{Kind: "slow"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var first *spool.Task
	waitFor(t, func() bool {
		page, _ := e.List(ctx, &spool.ListParams{ParentID: wf.ID, Ref: "first", Status: spool.StatusCompleted})
		if page != nil && len(page.Tasks) == 1 {
			first = page.Tasks[0]
		}
		return first != nil
	})
	if err := e.Delete(ctx, first.ID); !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("Delete of a finished step of a running workflow = %v, want ErrInvalidTransition", err)
	}
	close(release)
	if _, err := e.Wait(ctx, wf.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(ctx, wf.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get(ctx, first.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("step after its workflow's Delete: %v, want ErrNotFound", err)
	}
}

func TestWorkflowStepOptionsTyped(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	var body spool.Request
	if err := json.Unmarshal([]byte(`{"kind": "workflow", "file_id": "`+in.ID+`", "workflow": [
		{"kind": "image", "width": 320, "next": [{"kind": "video", "fps": 24, "custom": 7}]}]}`), &body); err != nil {
		t.Fatal(err)
	}
	e.Register("image", produce(&recorder{}, "", "", nil))
	e.Register("video", produce(&recorder{}, "", "", nil))
	created, err := e.Create(ctx, body)
	if err == nil || !strings.Contains(err.Error(), "custom") {
		t.Fatalf("Create with an unknown video option = %v, %v; want it refused", created, err)
	}
	body.Workflow[0].Next[0].Options = map[string]any{"fps": json.Number("24")}
	created, err = e.Create(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Get(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range []*spool.Task{created, got} {
		if w := task.Steps[0].Options["width"]; w != int64(320) {
			t.Errorf("step width = %#v, want int64(320)", w)
		}
		if f := task.Steps[0].Next[0].Options["fps"]; f != float64(24) {
			t.Errorf("next step fps = %#v, want float64(24)", f)
		}
	}
}

// TestWorkflowStepsNotifyWebhook: steps inherit their workflow's
// webhook_url, so the receiver hears of every step too.
func TestWorkflowStepsNotifyWebhook(t *testing.T) {
	ctx := ctxT(t)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	cfg := hookConfig(filepath.Join(t.TempDir(), "spool.db"))
	cfg.Prober = spool.ProberFunc(mediaProber)
	e := openFile(t, cfg)
	e.Register("a", produce(&recorder{}, "", "", nil))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	in, err := e.CreateFile(ctx, strings.NewReader("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, WebhookURL: srv.URL + "/hook",
		Workflow: []spool.Step{{Kind: "a", Next: []spool.Step{{Kind: "a"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Wait(ctx, wf.ID); err != nil {
		t.Fatal(err)
	}
	page, err := e.List(ctx, &spool.ListParams{ParentID: wf.ID})
	if err != nil || page.Total != 2 {
		t.Fatalf("steps: %v %v", page, err)
	}
	for _, id := range append(ids(page.Tasks), wf.ID) {
		awaitDeliveries(t, e, id, "the completion delivered", func(ds []*spool.Delivery) bool {
			for _, d := range ds {
				if d.Type == spool.EventFor(spool.StatusCompleted) && d.State == spool.DeliveryDelivered {
					return true
				}
			}
			return false
		})
	}
	for _, h := range rc.snapshot() {
		if h.err != nil {
			t.Errorf("a delivery did not verify: %v", h.err)
		}
	}
}

func ids(ts []*spool.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// A stalled workflow is repaired however many workflows wait before it
// (found in review: the maintenance loop looked at the 100 oldest waiting
// workflows only, so a newer stalled one waited for good).
func TestWorkflowRepairBeyondFirstPage(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{MaxAttempts: 1, AcceptUnavailableKinds: true,
		EventRetention: 10 * time.Second, LeaseDuration: time.Second, HeartbeatInterval: 50 * time.Millisecond})
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// 100 workflows wait for good on a step no engine runs here.
	for range 100 {
		if _, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: []spool.Step{{Kind: "nsfw"}}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		page, _ := e.List(ctx, &spool.ListParams{Kind: "workflow", Status: spool.StatusWaiting, Limit: 1})
		return page != nil && page.Total == 100
	})
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: []spool.Step{{Kind: "speech"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		claimed, err := e.Store().ClaimTasks(ctx, &spool.ClaimParams{Owner: "inst_gone", Now: time.Now(),
			Lease: time.Millisecond, Batches: []spool.ClaimBatch{{Kinds: []string{"speech"}, Limit: 1}}})
		return err == nil && len(claimed) == 1
	})
	// The step's lease runs out on its last attempt: it ends in error with
	// no hook, and the maintenance loop must advance its workflow.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	done, err := e.Wait(wctx, wf.ID)
	if err != nil {
		t.Fatalf("the stalled workflow did not end: %v", err)
	}
	if done.Status != spool.StatusError {
		t.Fatalf("workflow %s %q, want error", done.Status, done.Error)
	}
}

// A finished workflow's summaries list no step that does not exist (found
// in review: once one of its finished steps was deleted, each read of the
// workflow listed a made-up pending step in its place, a new id each time).
func TestWorkflowSummariesAfterStepDeleted(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	e.Register("a", produce(&recorder{}, "", "", nil))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID,
		Workflow: []spool.Step{{Kind: "a", Ref: "gone"}, {Kind: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Wait(ctx, wf.ID); err != nil {
		t.Fatal(err)
	}
	page, err := e.List(ctx, &spool.ListParams{ParentID: wf.ID, Ref: "gone"})
	if err != nil || len(page.Tasks) != 1 {
		t.Fatalf("step: %v %v", page, err)
	}
	if err := e.Delete(ctx, page.Tasks[0].ID); err != nil {
		t.Fatal(err)
	}
	got, err := e.Get(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got.Workflow {
		if _, err := e.Get(ctx, s.ID); err != nil && s.ID != page.Tasks[0].ID {
			t.Errorf("summary of step %s (%s, %s): %v", s.ID, s.Step, s.Status, err)
		}
	}
}

// A step decoded from JSON is named by its index in errors, as validation
// names it (found in review: "workflow.next.kind" for the second step's
// second next step).
func TestWorkflowDecodeErrorPaths(t *testing.T) {
	tests := []struct{ workflow, field string }{
		{`[{"kind": "a"}, {"kind": "a", "next": [{"kind": "a"}, {"kind": 5}]}]`, "workflow[1].next[1].kind"},
		{`[{"kind": "a", "next": [{"ref": 5}]}]`, "workflow[0].next[0].ref"},
		{`[{"kind": "a"}, 7]`, "workflow[1]"},
		{`[{"kind": "a", "next": {"kind": "a"}}]`, "workflow[0].next"},
		{`{"kind": "a"}`, "workflow"},
	}
	for _, tt := range tests {
		var req spool.Request
		err := json.Unmarshal([]byte(`{"kind": "workflow", "workflow": `+tt.workflow+`}`), &req)
		var ve *spool.ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("decode %s = %v; want a ValidationError naming %s", tt.workflow, err, tt.field)
		}
	}
}

// A file that a running workflow takes as input cannot be deleted
// (ErrFileInUse). Should its record go all the same (a store that does not
// check, here SQL behind the engine's back), a step that completes
// afterwards still completes, once: its next steps start and fail on their
// missing input (found in review: creating them failed the completion's
// transaction, so the step ran again and again until its lease ran out on
// its last attempt).
func TestWorkflowInputDeletedMidway(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	e, in := openWorkflowEngine(t, spool.Config{Path: path, MaxAttempts: 3, LeaseDuration: time.Second,
		HeartbeatInterval: 50 * time.Millisecond})
	db, err := sqlOpen(path + "?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var runs atomic.Int32
	e.Register("a", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		runs.Add(1)
		// The user tries to delete the upload while the step runs.
		if err := e.DeleteFile(ctx, in.ID); !errors.Is(err, spool.ErrFileInUse) {
			return fmt.Errorf("DeleteFile of the running workflow's input: %v, want ErrFileInUse", err)
		}
		_, err := db.ExecContext(ctx, "DELETE FROM files WHERE id = ?", in.ID)
		return err // no output file: the next step takes this step's input
	}))
	e.Register("b", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		_, err := job.InputPath(ctx)
		return err
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID,
		Workflow: []spool.Step{{Kind: "a", Next: []spool.Step{{Kind: "b"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.Wait(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("step a ran %d times, want once", n)
	}
	if done.Status == spool.StatusCompleted || !strings.Contains(done.Error, "workflow[0].next[0] (b)") {
		t.Errorf("workflow %s %q: want it to fail on step b's missing input", done.Status, done.Error)
	}
}

// A workflow on a stored file is stored waiting, with its top-level steps,
// by Create itself: its steps exist before any engine runs, it never runs
// (no processing), and Create's answer lists them. One with an
// idempotency key still runs first, and a retried Create makes no second
// set of steps.
func TestWorkflowOnFileStartsAtCreate(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	e.Register("noop", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	steps := parseSteps(t, `[{"kind": "noop", "ref": "a", "next": [{"kind": "noop"}]}, {"kind": "noop", "ref": "b"}]`)
	wf, err := e.Create(ctx, spool.Request{Kind: spool.KindWorkflow, FileID: in.ID, Workflow: steps})
	if err != nil {
		t.Fatal(err)
	}
	if wf.Status != spool.StatusWaiting || len(wf.Workflow) != 2 {
		t.Fatalf("created workflow: %s with %d steps listed, want waiting with its 2 top-level steps", wf.Status, len(wf.Workflow))
	}
	page, err := e.List(ctx, &spool.ListParams{ParentID: wf.ID})
	if err != nil || len(page.Tasks) != 2 {
		t.Fatalf("steps stored by Create: %v, %v; want 2", page, err)
	}
	for _, s := range page.Tasks {
		if s.Status != spool.StatusPending || s.Input == nil || s.Input.ID != in.ID {
			t.Errorf("step %s: %s on %+v, want pending on the workflow's input", s.Step, s.Status, s.Input)
		}
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done, err := e.Wait(ctx, wf.ID)
	if err != nil || done.Status != spool.StatusCompleted || len(done.Workflow) != 3 {
		t.Fatalf("workflow: %v, %v; want completed with 3 steps", done, err)
	}
	evs, err := e.Events(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Task.ID == wf.ID && ev.Type == "task.processing" {
			t.Errorf("the workflow ran itself: %s", ev.Type)
		}
	}

	keyed := spool.Request{Kind: spool.KindWorkflow, FileID: in.ID, Workflow: steps, IdempotencyKey: "wf-1"}
	first, err := e.Create(ctx, keyed)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.Create(ctx, keyed)
	if err != nil || again.ID != first.ID {
		t.Fatalf("retried Create: %v, %v; want %s", again, err, first.ID)
	}
	if done, err := e.Wait(ctx, first.ID); err != nil || done.Status != spool.StatusCompleted || len(done.Workflow) != 3 {
		t.Fatalf("keyed workflow: %v, %v; want completed with 3 steps", done, err)
	}
	if page, err := e.List(ctx, &spool.ListParams{ParentID: first.ID}); err != nil || len(page.Tasks) != 3 {
		t.Errorf("keyed workflow's steps: %v, %v; want 3, none twice", page, err)
	}
}

// A Step built in Go with its ref among its options has it as its ref; a
// kind, next steps or a second, different ref among them are refused,
// naming the step. (Stored as they were, they were read back as the
// step's own fields: a ref that is not a string lost the step.)
func TestWorkflowStepFieldsAmongOptions(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	e.Register("ok", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		step  spool.Step
		field string
	}{
		{spool.Step{Kind: "ok", Options: map[string]any{"ref": 5}}, "workflow[1].ref"},
		{spool.Step{Kind: "ok", Ref: "x", Options: map[string]any{"ref": "y"}}, "workflow[1].ref"},
		{spool.Step{Kind: "ok", Options: map[string]any{"next": []any{map[string]any{"kind": "ok"}}}}, "workflow[1].next"},
		{spool.Step{Kind: "ok", Options: map[string]any{"kind": "ok"}}, "workflow[1].kind"},
	} {
		_, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID,
			Workflow: []spool.Step{{Kind: "ok"}, c.step}})
		var ve *spool.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("options %v: err = %v, want a ValidationError naming %s", c.step.Options, err, c.field)
		}
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID,
		Workflow: []spool.Step{{Kind: "ok"}, {Kind: "ok", Options: map[string]any{"ref": "second"}}}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.Wait(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != spool.StatusCompleted || len(done.Results.Passed) != 2 || done.Results.Passed[1]["ref"] != "second" {
		t.Errorf("workflow %s, passed %v; want both steps, the second with ref \"second\"", done.Status, done.Results.Passed)
	}
}

// TestWorkflowResultsAlwaysListSkipped: a workflow's results have the
// skipped key even when nothing was skipped (a client reads
// results.skipped.length), stored and read back; a conditions task's
// results, which skip nothing, leave it out.
func TestWorkflowResultsAlwaysListSkipped(t *testing.T) {
	ctx := ctxT(t)
	e, in := openWorkflowEngine(t, spool.Config{})
	e.Register("a", produce(&recorder{}, "", "", nil))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf, err := e.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: parseSteps(t, `[
		{"kind": "a"},
		{"kind": "conditions", "conditions": [{"prop": "duration", "operator": "gt", "value": "60"}]}]`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Wait(ctx, wf.ID); err != nil {
		t.Fatal(err)
	}
	results := func(id string) map[string]json.RawMessage {
		t.Helper()
		task, err := e.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(task)
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Results map[string]json.RawMessage }
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v.Results
	}
	got := results(wf.ID)
	if string(got["skipped"]) != "[]" || string(got["failed"]) != "[]" {
		t.Errorf("workflow results: skipped %s, failed %s; want both []", got["skipped"], got["failed"])
	}
	page, err := e.List(ctx, &spool.ListParams{ParentID: wf.ID, Kind: spool.KindConditions})
	if err != nil || len(page.Tasks) != 1 {
		t.Fatalf("conditions step: %v %v", page, err)
	}
	cond := results(page.Tasks[0].ID)
	if _, ok := cond["skipped"]; ok || string(cond["continue"]) != "true" {
		t.Errorf("conditions results: skipped %s, continue %s; want no skipped key, continue true", cond["skipped"], cond["continue"])
	}
}
