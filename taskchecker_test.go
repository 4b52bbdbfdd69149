package spool_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// pickyHandler runs tasks whose size option is small, refuses big ones
// (naming the field) and says plainly why it refuses mode "x".
type pickyHandler struct{ asked *int }

func (pickyHandler) Handle(context.Context, *spool.Job) error { return nil }

func (h pickyHandler) CheckTask(_ context.Context, t *spool.Task) error {
	*h.asked++
	if t.Input == nil || t.Input.Kind != "image" {
		return errors.New("no image input")
	}
	if n, ok := t.Options["size"].(int64); ok && n > 10 { // typed, not float64
		return &spool.ValidationError{Field: "size", Reason: "too big for this machine"}
	}
	if m, _ := t.Options["mode"].(string); m == "x" {
		return errors.New("mode x needs a GPU")
	}
	return nil
}

func (pickyHandler) Spec() *spool.KindSpec {
	return &spool.KindSpec{Kind: "picky", Options: []spool.OptionSpec{
		{Name: "size", Type: spool.TypeInt}, {Name: "mode", Type: spool.TypeString}}}
}

// TestTaskChecker: a started engine asks a TaskChecker about each task at
// Create, with typed options and the file_id input resolved, and refuses
// what it refuses as ErrKindUnavailable naming its field; an engine not
// started, or accepting unavailable kinds, does not ask.
func TestTaskChecker(t *testing.T) {
	ctx := ctxT(t)
	for _, tc := range []struct {
		name    string
		start   bool
		accept  bool
		wantAsk bool
	}{
		{"started", true, false, true},
		{"not started", false, false, false},
		{"accepting", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := openFile(t, spool.Config{AcceptUnavailableKinds: tc.accept})
			asked := 0
			e.Register("picky", pickyHandler{&asked})
			if tc.start {
				if err := e.Start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			f, err := e.CreateFile(ctx, bytes.NewReader(pngBytes(t, 8, 8)), &spool.FileParams{Filename: "a.png"})
			if err != nil {
				t.Fatal(err)
			}
			create := func(opts map[string]any) error {
				_, err := e.Create(ctx, spool.Request{Kind: "picky", FileID: f.ID, Options: opts})
				return err
			}
			if err := create(map[string]any{"size": 5.0}); err != nil {
				t.Errorf("small: %v", err)
			}
			err = create(map[string]any{"size": 50.0})
			var ve *spool.ValidationError
			if tc.wantAsk != (err != nil) {
				t.Fatalf("big: %v, want refused: %v", err, tc.wantAsk)
			}
			if !tc.wantAsk {
				if asked != 0 {
					t.Errorf("asked %d times, want never", asked)
				}
				return
			}
			if !errors.As(err, &ve) || ve.Field != "size" || !errors.Is(err, spool.ErrKindUnavailable) ||
				!strings.Contains(ve.Reason, "too big for this machine") {
				t.Errorf("big: %v, want a ValidationError for size matching ErrKindUnavailable", err)
			}
			err = create(map[string]any{"mode": "x"})
			if !errors.As(err, &ve) || ve.Field != "kind" || !strings.Contains(ve.Reason, "mode x needs a GPU") {
				t.Errorf("mode x: %v, want a ValidationError for kind", err)
			}
		})
	}
}

// missingTool is a handler whose program is not installed here.
type missingTool struct{ ran *atomic.Int32 }

func (h missingTool) Handle(context.Context, *spool.Job) error {
	h.ran.Add(1)
	return errors.New("scanner: not found")
}

func (missingTool) Check(context.Context) error { return errors.New("scanner not installed") }

// TestAcceptUnavailableKindsLeavesTasks: an engine accepting kinds it
// cannot run does not claim their tasks, which wait for an engine that can
// run them, on the same database; it runs the rest. Claimed, they ran
// into the missing program and failed.
func TestAcceptUnavailableKindsLeavesTasks(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	var ran atomic.Int32
	e := openFile(t, spool.Config{Path: path, AcceptUnavailableKinds: true, PollInterval: 10 * time.Millisecond})
	e.Register("scan", missingTool{&ran})
	e.Register("ok", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	scan, err := e.Create(ctx, spool.Request{Kind: "scan"})
	if err != nil {
		t.Fatal(err)
	}
	// Younger than scan: a claim that took it would have taken scan first.
	ok, err := e.Create(ctx, spool.Request{Kind: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if done, err := e.Wait(ctx, ok.ID); err != nil || done.Status != spool.StatusCompleted {
		t.Fatalf("ok task: %v, %v", done, err)
	}
	time.Sleep(50 * time.Millisecond) // a few polls more
	if got, err := e.Get(ctx, scan.ID); err != nil || got.Status != spool.StatusPending || got.Attempt != 0 || ran.Load() != 0 {
		t.Fatalf("scan task %+v (%v), ran %d times: want it pending, never claimed", got, err, ran.Load())
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	other := openFile(t, spool.Config{Path: path})
	other.Register("scan", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	other.Register("ok", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	if err := other.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if done, err := other.Wait(ctx, scan.ID); err != nil || done.Status != spool.StatusCompleted {
		t.Fatalf("scan task on an engine that can run it: %v, %v", done, err)
	}
}

// An engine accepting kinds it cannot run does not take their new tasks by
// hand-off either (found in review: Create handed a task straight to an
// idle worker when its kind had a handler, available or not, and the task
// ran into the missing program and failed).
func TestAcceptUnavailableKindsNoHandoff(t *testing.T) {
	ctx := ctxT(t)
	var ran atomic.Int32
	e := openFile(t, spool.Config{AcceptUnavailableKinds: true, PollInterval: 10 * time.Millisecond})
	e.Register("scan", missingTool{&ran})
	e.Register("ok", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Drain the queue, so that the engine hands new tasks to idle workers.
	for range 3 {
		ok, err := e.Create(ctx, spool.Request{Kind: "ok"})
		if err != nil {
			t.Fatal(err)
		}
		if done, err := e.Wait(ctx, ok.ID); err != nil || done.Status != spool.StatusCompleted {
			t.Fatalf("ok task: %v, %v", done, err)
		}
		time.Sleep(30 * time.Millisecond) // a few polls, which find the queue empty
	}
	scan, err := e.Create(ctx, spool.Request{Kind: "scan"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // time for a hand-off to run it
	if got, err := e.Get(ctx, scan.ID); err != nil || got.Status != spool.StatusPending || got.Attempt != 0 || ran.Load() != 0 {
		t.Fatalf("scan task %+v (%v), ran %d times: want it pending, never run", got, err, ran.Load())
	}
}
