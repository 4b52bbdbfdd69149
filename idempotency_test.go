package spool_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// idemEngine opens an engine that is not started (nothing runs, so the
// task counts only change by Create) with a custom kind, and two input
// files.
func idemEngine(t *testing.T, cfg spool.Config) (*spool.Engine, [2]string) {
	t.Helper()
	e := openFile(t, cfg)
	e.Register("x", spool.HandlerFunc(nil))
	var files [2]string
	for i := range files {
		f, err := e.CreateFile(ctxT(t), strings.NewReader("input"), &spool.FileParams{Filename: "in.png"})
		if err != nil {
			t.Fatal(err)
		}
		files[i] = f.ID
	}
	return e, files
}

// countTasks counts every stored task, workflow steps included.
func countTasks(t *testing.T, e *spool.Engine) int {
	t.Helper()
	st, err := e.Stats(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range st.ByStatus {
		n += c
	}
	return n
}

// jsonRequest decodes a create body as a server does.
func jsonRequest(t *testing.T, body string) spool.Request {
	t.Helper()
	var r spool.Request
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return r
}

// sameOptions compares options as read back: no options and empty ones
// are alike.
func sameOptions(a, b map[string]any) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

// TestIdempotencyReplay: the same request again, in another form (numbers
// as float64 or int, defaults given explicitly, JSON keys in another
// order), returns the first task and stores nothing.
func TestIdempotencyReplay(t *testing.T) {
	ctx := ctxT(t)
	e, files := idemEngine(t, spool.Config{})
	runAt := time.Date(2100, 1, 2, 3, 4, 5, 6, time.UTC)
	const wf = `{"kind": "workflow", "file_id": %q, "idempotency_key": "wf", "workflow": [
		{"kind": "image", "width": 64, "format": "png"},
		{"kind": "x", "ref": "b", "n": 1.5, "next": [{"kind": "image", "height": 10}]}]}`
	const wfAgain = `{"workflow": [
		{"format": "png", "width": 64.0, "kind": "image", "quality": 80},
		{"next": [{"height": 1e1, "kind": "image"}], "n": 1.50, "ref": "b", "kind": "x"}],
		"idempotency_key": "wf", "file_id": %q, "kind": "workflow"}`
	for _, c := range []struct {
		name         string
		first, again spool.Request
	}{
		{"Go, numbers as int and float64, a default given",
			spool.Request{Kind: "image", URL: "https://example.com/a.png", IdempotencyKey: "go",
				Options: map[string]any{"width": 100, "format": "webp"}},
			spool.Request{Kind: "image", URL: "https://example.com/a.png", IdempotencyKey: "go",
				Options: map[string]any{"width": 100.0, "format": "webp", "quality": 80}}},
		{"Go, custom kind with nested numbers and every request field",
			spool.Request{Kind: "x", FileID: files[0], Ref: "r", Filename: "out.png", Folder: "f",
				WebhookURL: "https://example.com/hook", RunAt: runAt, IdempotencyKey: "all",
				Options: map[string]any{"a": int64(1), "b": []any{1, 2.5}, "c": map[string]any{"d": float32(3)}}},
			spool.Request{Kind: "x", FileID: files[0], Ref: "r", Filename: "out.png", Folder: "f",
				WebhookURL: "https://example.com/hook", RunAt: runAt.In(time.FixedZone("x", 3600)), IdempotencyKey: "all",
				Options: map[string]any{"c": map[string]any{"d": json.Number("3.0")}, "b": []any{1.0, json.Number("2.5")}, "a": 1}}},
		{"Go, no options and empty options",
			spool.Request{Kind: "x", IdempotencyKey: "empty"},
			spool.Request{Kind: "x", IdempotencyKey: "empty", Options: map[string]any{}}},
		{"JSON body replayed as is",
			jsonRequest(t, `{"kind": "image", "url": "https://example.com/b.png", "width": 10, "ref": "r", "idempotency_key": "j1"}`),
			jsonRequest(t, `{"kind": "image", "url": "https://example.com/b.png", "width": 10, "ref": "r", "idempotency_key": "j1"}`)},
		{"JSON body, keys reordered, 10 as 10.0, a default given",
			jsonRequest(t, `{"kind": "image", "url": "https://example.com/c.png", "width": 10, "idempotency_key": "j2"}`),
			jsonRequest(t, `{"idempotency_key": "j2", "quality": 80, "width": 10.0, "url": "https://example.com/c.png", "kind": "image"}`)},
		{"JSON workflow with steps",
			jsonRequest(t, strings.ReplaceAll(wf, "%q", `"`+files[0]+`"`)),
			jsonRequest(t, strings.ReplaceAll(wfAgain, "%q", `"`+files[0]+`"`))},
		{"Go workflow, then its JSON",
			spool.Request{Kind: spool.KindWorkflow, FileID: files[1], IdempotencyKey: "wf-go", Workflow: []spool.Step{
				{Kind: "image", Options: map[string]any{"width": 64}},
				{Kind: "x", Ref: "b", Next: []spool.Step{{Kind: "x", Options: map[string]any{"n": 2}}}}}},
			jsonRequest(t, `{"kind": "workflow", "file_id": "`+files[1]+`", "idempotency_key": "wf-go", "workflow": [
				{"kind": "image", "width": 64.0}, {"kind": "x", "ref": "b", "next": [{"kind": "x", "n": 2.0}]}]}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			first, err := e.Create(ctx, c.first)
			if err != nil {
				t.Fatal(err)
			}
			n := countTasks(t, e)
			again, err := e.Create(ctx, c.again)
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			if again.ID != first.ID || !sameOptions(again.Options, first.Options) {
				t.Errorf("replay returned %s %v, want the first task %s %v", again.ID, again.Options, first.ID, first.Options)
			}
			if got := countTasks(t, e); got != n {
				t.Errorf("%d tasks after the replay, want %d", got, n)
			}
			// In a batch too, beside a new request.
			batch, err := e.CreateMany(ctx, []spool.Request{{Kind: "x"}, c.again})
			if err != nil || len(batch) != 2 || batch[1].ID != first.ID {
				t.Fatalf("CreateMany with the replay = %v, %v; want the first task second", batch, err)
			}
		})
	}
}

// TestIdempotencyMismatch: a used key with a request that differs in any
// field it sets is refused, naming the key and the first field that
// differs, and stores nothing; the first task is left as it was.
func TestIdempotencyMismatch(t *testing.T) {
	ctx := ctxT(t)
	e, files := idemEngine(t, spool.Config{})
	img := func(mod func(*spool.Request)) spool.Request {
		r := spool.Request{Kind: "image", URL: "https://example.com/a.png", Ref: "r",
			WebhookURL: "https://example.com/hook", Options: map[string]any{"width": 100}}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	wf := func(width any, second string) spool.Request {
		return spool.Request{Kind: spool.KindWorkflow, FileID: files[0], Workflow: []spool.Step{
			{Kind: "image", Options: map[string]any{"width": width}}, {Kind: second}}}
	}
	for _, c := range []struct {
		name         string
		first, again spool.Request
		field        string
	}{
		{"kind", img(nil), img(func(r *spool.Request) { r.Kind = "video" }), "kind"},
		{"url", img(nil), img(func(r *spool.Request) { r.URL = "https://example.com/b.png" }), "url"},
		{"url to file_id", img(nil), img(func(r *spool.Request) { r.URL, r.FileID = "", files[0] }), "url"},
		{"file_id", img(func(r *spool.Request) { r.URL, r.FileID = "", files[0] }),
			img(func(r *spool.Request) { r.URL, r.FileID = "", files[1] }), "file_id"},
		{"option value", img(nil), img(func(r *spool.Request) { r.Options["width"] = 101 }), "width"},
		{"option added", img(nil), img(func(r *spool.Request) { r.Options["height"] = 50 }), "height"},
		{"option against its default", img(nil), img(func(r *spool.Request) { r.Options["quality"] = 70 }), "quality"},
		{"nested option", spool.Request{Kind: "x", Options: map[string]any{"o": map[string]any{"a": []any{1, 2}}}},
			spool.Request{Kind: "x", Options: map[string]any{"o": map[string]any{"a": []any{1, 3}}}}, "o.a[1]"},
		{"ref", img(nil), img(func(r *spool.Request) { r.Ref = "other" }), "ref"},
		{"folder", img(nil), img(func(r *spool.Request) { r.Folder = "f" }), "folder"},
		{"webhook_url", img(nil), img(func(r *spool.Request) { r.WebhookURL = "https://example.com/other" }), "webhook_url"},
		{"run_at", img(nil), img(func(r *spool.Request) { r.RunAt = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) }), "run_at"},
		{"workflow step option", wf(64, "x"), wf(65, "x"), "workflow[0].width"},
		{"workflow step kind", wf(64, "x"), wf(64, "image"), "workflow[1].kind"},
		{"workflow steps added", wf(64, "x"), func() spool.Request {
			r := wf(64, "x")
			r.Workflow = append(r.Workflow, spool.Step{Kind: "x"})
			return r
		}(), "workflow"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := "key " + c.name
			c.first.IdempotencyKey, c.again.IdempotencyKey = key, key
			first, err := e.Create(ctx, c.first)
			if err != nil {
				t.Fatal(err)
			}
			n := countTasks(t, e)
			check := func(call string, err error, field string) {
				t.Helper()
				var ve *spool.ValidationError
				if !errors.Is(err, spool.ErrIdempotencyMismatch) || !errors.Is(err, spool.ErrInvalidRequest) ||
					!errors.As(err, &ve) || ve.Field != field {
					t.Fatalf("%s = %v; want ErrIdempotencyMismatch on %s", call, err, field)
				}
				if msg := err.Error(); !strings.Contains(msg, `"`+key+`"`) || !strings.Contains(msg, c.field+" differs") {
					t.Errorf("%s: message %q does not name the key and the field", call, msg)
				}
				if got := countTasks(t, e); got != n {
					t.Errorf("%s: %d tasks after the refusal, want %d", call, got, n)
				}
			}
			_, err = e.Create(ctx, c.again)
			check("Create", err, c.field)
			// A batch with it stores none of its requests.
			_, err = e.CreateMany(ctx, []spool.Request{{Kind: "x"}, c.again, {Kind: "x"}})
			check("CreateMany", err, "requests[1]."+c.field)
			if got, err := e.Get(ctx, first.ID); err != nil || !sameOptions(got.Options, first.Options) ||
				got.Kind != first.Kind || got.Status != first.Status || !reflect.DeepEqual(got.Steps, first.Steps) {
				t.Errorf("first task now %+v, %v; want it unchanged", got, err)
			}
		})
	}
}

// TestIdempotencyMismatchInBatch: a key given twice in one CreateMany, for
// two different requests, fails the batch; for the same request twice it
// makes one task.
func TestIdempotencyMismatchInBatch(t *testing.T) {
	ctx := ctxT(t)
	e, _ := idemEngine(t, spool.Config{})
	a := spool.Request{Kind: "x", IdempotencyKey: "k", Options: map[string]any{"n": 1}}
	b := spool.Request{Kind: "x", IdempotencyKey: "k", Options: map[string]any{"n": 2}}
	_, err := e.CreateMany(ctx, []spool.Request{{Kind: "x"}, a, b})
	var ve *spool.ValidationError
	if !errors.Is(err, spool.ErrIdempotencyMismatch) || !errors.As(err, &ve) || ve.Field != "requests[2].n" {
		t.Fatalf("CreateMany = %v; want ErrIdempotencyMismatch on requests[2].n", err)
	}
	if n := countTasks(t, e); n != 0 {
		t.Errorf("the refused batch stored %d tasks", n)
	}
	same := b
	same.Options = map[string]any{"n": 2.0}
	ts, err := e.CreateMany(ctx, []spool.Request{b, same})
	if err != nil || ts[0].ID != ts[1].ID || countTasks(t, e) != 1 {
		t.Fatalf("CreateMany of one request twice = %v, %v; want one task", ts, err)
	}
}

// TestIdempotencyMismatchStarted: on a started engine with an idle
// worker, Create hands the task straight to it (Store.CreateAndClaim); a
// used key is refused or replayed there too, and the replay does not run
// the task again.
func TestIdempotencyMismatchStarted(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{})
	var mu sync.Mutex
	runs := 0
	e.Register("x", spool.HandlerFunc(func(context.Context, *spool.Job) error {
		mu.Lock()
		runs++
		mu.Unlock()
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	req := spool.Request{Kind: "x", IdempotencyKey: "k", Options: map[string]any{"n": 1}}
	first, err := e.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Wait(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	other := req
	other.Options = map[string]any{"n": 2}
	if _, err := e.Create(ctx, other); !errors.Is(err, spool.ErrIdempotencyMismatch) {
		t.Errorf("Create with the key and n 2 = %v; want ErrIdempotencyMismatch", err)
	}
	req.Options = map[string]any{"n": 1.0}
	if again, err := e.Create(ctx, req); err != nil || again.ID != first.ID || again.Status != spool.StatusCompleted {
		t.Errorf("replay = %v, %v; want the completed first task", again, err)
	}
	if n := countTasks(t, e); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if runs != 1 {
		t.Errorf("the task ran %d times, want once", runs)
	}
}

// uncheckedKeys is a Store that keeps idempotency keys itself and returns
// the first task for a used key without comparing: the engine must refuse
// a different request on its own.
type uncheckedKeys struct {
	spool.Store
	mu    sync.Mutex
	byKey map[string]*spool.Task
}

func (s *uncheckedKeys) CreateTasks(ctx context.Context, tasks []*spool.Task) ([]*spool.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*spool.Task, len(tasks))
	var fresh []*spool.Task
	for i, t := range tasks {
		if prev := s.byKey[t.IdempotencyKey]; prev != nil {
			c := *prev
			out[i] = &c
			continue
		}
		c := *t
		c.IdempotencyKey = "" // the SQLite store below must not see it
		out[i] = t
		fresh = append(fresh, &c)
	}
	if len(fresh) > 0 {
		if _, err := s.Store.CreateTasks(ctx, fresh); err != nil {
			return nil, err
		}
	}
	for _, t := range tasks {
		if t.IdempotencyKey != "" && s.byKey[t.IdempotencyKey] == nil {
			c := *t
			s.byKey[t.IdempotencyKey] = &c
		}
	}
	return out, nil
}

// TestIdempotencyMismatchOtherStore: with a Store that does not compare
// requests, the engine still refuses a different request with a used key
// and replays the same one.
func TestIdempotencyMismatchOtherStore(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{Store: &uncheckedKeys{Store: openStore(t), byKey: map[string]*spool.Task{}}})
	e.Register("x", spool.HandlerFunc(nil))
	req := spool.Request{Kind: "x", IdempotencyKey: "k", Options: map[string]any{"n": 1}}
	first, err := e.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	other := req
	other.Options = map[string]any{"n": 2}
	var ve *spool.ValidationError
	if _, err := e.Create(ctx, other); !errors.Is(err, spool.ErrIdempotencyMismatch) || !errors.As(err, &ve) || ve.Field != "n" {
		t.Errorf("Create with the key and n 2 = %v; want ErrIdempotencyMismatch on n", err)
	}
	if again, err := e.Create(ctx, req); err != nil || again.ID != first.ID {
		t.Errorf("replay = %v, %v; want the first task", again, err)
	}
}
