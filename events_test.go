package spool_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spoolrun/spool"
)

// eventsByTask reads every event from the engine and groups the types by
// task, checking that ids increase.
func eventsByTask(t *testing.T, e *spool.Engine) map[string][]spool.EventType {
	t.Helper()
	out := map[string][]spool.EventType{}
	after, prev := "", ""
	for {
		evs, err := e.Events(context.Background(), after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.ID <= prev {
				t.Fatalf("event ids not increasing: %s after %s", ev.ID, prev)
			}
			prev = ev.ID
			out[ev.Task.ID] = append(out[ev.Task.ID], ev.Type)
		}
		if len(evs) < 500 {
			return out
		}
		after = evs[len(evs)-1].ID
	}
}

func TestEventsPerTaskInOrder(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	var mu sync.Mutex
	var seen []spool.Event
	e := openFile(t, spool.Config{Path: path, MaxAttempts: 2, OnEvent: func(ev spool.Event) {
		mu.Lock()
		seen = append(seen, ev)
		mu.Unlock()
	}})
	fails := map[string]bool{}
	e.Register("x", spool.HandlerFunc(func(_ context.Context, job *spool.Job) error {
		if job.Task.Options["fail"] == true && job.Attempt == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 20 {
		tk, err := e.Create(ctx, spool.Request{Kind: "x", Options: map[string]any{"fail": i%4 == 0}})
		if err != nil {
			t.Fatal(err)
		}
		fails[tk.ID] = i%4 == 0
		ids = append(ids, tk.ID)
	}
	for _, id := range ids {
		if _, err := e.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	plain := []spool.EventType{"task.created", "task.processing", "task.completed"}
	retried := []spool.EventType{"task.created", "task.processing", "task.waiting", "task.processing", "task.completed"}
	check := func(byTask map[string][]spool.EventType) {
		t.Helper()
		for _, id := range ids {
			want := plain
			if fails[id] {
				want = retried
			}
			if !slices.Equal(byTask[id], want) {
				t.Errorf("task %s events %v, want %v", id, byTask[id], want)
			}
		}
	}
	check(eventsByTask(t, e))
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// OnEvent saw all of them, in commit order, by the time Close returned.
	mu.Lock()
	byTask := map[string][]spool.EventType{}
	for i, ev := range seen {
		if i > 0 && ev.ID <= seen[i-1].ID {
			t.Errorf("OnEvent out of order: %s after %s", ev.ID, seen[i-1].ID)
		}
		byTask[ev.Task.ID] = append(byTask[ev.Task.ID], ev.Type)
	}
	mu.Unlock()
	check(byTask)
	// Still readable after reopening the file.
	check(eventsByTask(t, openFile(t, spool.Config{Path: path})))
}

// TestOnEventResumes stops an engine before its callback has seen every
// event; the next engine on the file delivers the rest.
func TestOnEventResumes(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	var mu sync.Mutex
	got := map[string]int{}
	onEvent := func(ev spool.Event) {
		mu.Lock()
		got[ev.ID]++
		mu.Unlock()
	}
	e1 := openFile(t, spool.Config{Path: path, OnEvent: onEvent})
	e1.Register("x", spool.HandlerFunc(nil))
	if err := e1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A pure client writes events that no callback sees yet.
	client := openFile(t, spool.Config{Path: path})
	for range 5 {
		if _, err := client.Create(ctx, spool.Request{Kind: "image", URL: "https://example.com/a.png"}); err != nil {
			t.Fatal(err)
		}
	}
	e2 := openFile(t, spool.Config{Path: path, OnEvent: onEvent, PollInterval: 10 * time.Millisecond})
	if err := e2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 5 {
		t.Errorf("the restarted callback saw %d of the 5 events written while none ran", len(got))
	}
}

// TestSlowSubscriber reads a subscription slowly while tasks complete
// quickly: it lags but sees every event, and the engine is not held up.
func TestSlowSubscriber(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{Concurrency: 4})
	e.Register("x", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	sub, err := e.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := make([]spool.Request, 600)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: "x"}
	}
	tasks, err := e.CreateMany(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	// The engine finishes every task while the subscriber has read nothing.
	for _, tk := range tasks {
		if _, err := e.Wait(ctx, tk.ID); err != nil {
			t.Fatal(err)
		}
	}
	completed, prev := 0, ""
	for completed < len(tasks) {
		select {
		case ev := <-sub:
			if ev.ID <= prev {
				t.Fatalf("subscription out of order: %s after %s", ev.ID, prev)
			}
			prev = ev.ID
			if ev.Type == "task.completed" {
				completed++
			}
			if completed%100 == 0 {
				time.Sleep(time.Millisecond) // slow reader
			}
		case <-ctx.Done():
			t.Fatalf("subscriber saw %d of %d completions", completed, len(tasks))
		}
	}
}

// TestEventsCursorOutOfRange: a well-formed cursor past the newest event
// lists nothing, however large its sequence number (one past MaxInt64
// read as negative, and listed every event from the oldest); one before
// the oldest lists from the oldest.
func TestEventsCursorOutOfRange(t *testing.T) {
	ctx := context.Background()
	e, err := spool.Open(ctx, spool.Config{Path: filepath.Join(t.TempDir(), "spool.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(ctx) })
	e.Register("x", spool.HandlerFunc(nil)) // not started: one event per task
	if _, err := e.CreateMany(ctx, []spool.Request{{Kind: "x"}, {Kind: "x"}}); err != nil {
		t.Fatal(err)
	}
	cursor := func(ms, seq uint64) string {
		var id ulid.ULID
		var ent [10]byte
		binary.BigEndian.PutUint64(ent[2:], seq)
		if err := id.SetTime(ms); err != nil {
			t.Fatal(err)
		}
		if err := id.SetEntropy(ent[:]); err != nil {
			t.Fatal(err)
		}
		return "evt_" + id.String()
	}
	for _, c := range []struct {
		name   string
		cursor string
		want   int
	}{
		{"before the oldest", cursor(0, 0), 2},
		{"past the newest", cursor(0, 1<<40), 0},
		{"past MaxInt64", cursor(0, 1<<63+1), 0},
		{"the largest", cursor(ulid.MaxTime(), math.MaxUint64), 0},
	} {
		evs, err := e.Events(ctx, c.cursor, 100)
		if err != nil || len(evs) != c.want {
			t.Errorf("%s (%s): %d events, %v; want %d", c.name, c.cursor, len(evs), err, c.want)
		}
	}
}
