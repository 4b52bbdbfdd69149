package ui

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// TestEventsSince: the search by halves lands just before the first event
// at or after the time asked, so that a task page reads none older.
func TestEventsSince(t *testing.T) {
	ctx := context.Background()
	e, err := spool.Open(ctx, spool.Config{Path: filepath.Join(t.TempDir(), "spool.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(ctx) })
	// Not started: the tasks stay pending, one event each.
	e.Register("echo", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	h := &handler{e: e}
	if got := h.eventsSince(ctx, time.Now()); got != "" {
		t.Fatalf("no events: cursor %q, want \"\"", got)
	}
	for range 40 {
		if _, err := e.Create(ctx, spool.Request{Kind: "echo"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // the events below must be later than since, by the clock
	since := time.Now()
	time.Sleep(20 * time.Millisecond)
	var late []string
	for range 5 {
		task, err := e.Create(ctx, spool.Request{Kind: "echo"})
		if err != nil {
			t.Fatal(err)
		}
		late = append(late, task.ID)
	}
	cursor := h.eventsSince(ctx, since)
	evs, err := e.Events(ctx, cursor, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(late) {
		t.Fatalf("%d events after the cursor, want the %d late ones", len(evs), len(late))
	}
	for i, ev := range evs {
		if ev.Task.ID != late[i] {
			t.Errorf("event %d is of %s, want %s", i, ev.Task.ID, late[i])
		}
	}
	if seq, ok := eventSeq(seqCursor(12345)); !ok || seq != 12345 {
		t.Errorf("seqCursor round trip: %d, %v", seq, ok)
	}
}
