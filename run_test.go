package spool

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The scheduler's invariants, on its own.

func testRun(id string, attempt int) *run {
	return newRun(context.Background(), &Task{ID: id, Kind: "x", Attempt: attempt})
}

func TestSchedulerWorkerLimits(t *testing.T) {
	s := newScheduler(3, map[string]int{"video": 1})
	steps := []struct {
		take string
		free string
		want bool
	}{
		{take: "video", want: true},
		{take: "video", want: false}, // its kind is at its limit
		{take: "http", want: true},
		{take: "http", want: true},
		{take: "http", want: false}, // every worker is busy
		{free: "video"},
		{take: "http", want: true}, // a freed worker serves any kind
		{take: "video", want: false},
		{free: "http"},
		{take: "video", want: true},
	}
	for i, st := range steps {
		if st.free != "" {
			s.free(st.free, time.Millisecond)
			continue
		}
		if got := s.take(st.take); got != st.want {
			t.Fatalf("step %d: take(%s) = %v, want %v", i, st.take, got, st.want)
		}
		if s.running > s.limit || s.byKind["video"] > 1 {
			t.Fatalf("step %d: %d running, %d video: over a limit", i, s.running, s.byKind["video"])
		}
	}
	free, room := s.room([]string{"video", "http"})
	if free != 0 || room["video"] != 0 {
		t.Errorf("room = %d free, %v; want none", free, room)
	}
	if _, ok := room["http"]; ok {
		t.Error("room lists a kind without a limit")
	}
}

func TestSchedulerHeldRunsByAttempt(t *testing.T) {
	s := newScheduler(4, nil)
	first := testRun("task_a", 1)
	s.hold(first)
	if s.older(first) != nil {
		t.Error("a lone run has an older one")
	}
	// The task is claimed again (the first run lost its lease): the first
	// run is cancelled as lost, and the second waits for it.
	second := testRun("task_a", 2)
	s.hold(second)
	if cause := context.Cause(first.ctx); !errors.Is(cause, ErrLeaseLost) {
		t.Errorf("older run's cause = %v, want ErrLeaseLost", cause)
	}
	if second.ctx.Err() != nil {
		t.Error("the new run was cancelled")
	}
	if s.older(second) != first {
		t.Error("the new run does not see the older one")
	}
	if got := len(s.find("task_a")); got != 2 {
		t.Errorf("find = %d runs, want 2", got)
	}
	// The first run ends: only its own entry goes.
	s.forget(first)
	select {
	case <-first.done:
	default:
		t.Error("forget did not close the run's done channel")
	}
	if s.older(second) != nil {
		t.Error("the ended run is still seen")
	}
	if got := s.find("task_a"); len(got) != 1 || got[0] != second {
		t.Errorf("after the first run ended, held = %v; want the second run", got)
	}
	// Forgetting a run twice, or one never held, changes nothing.
	s.forget(first)
	s.forget(testRun("task_a", 2))
	if got := s.find("task_a"); len(got) != 1 || got[0] != second {
		t.Error("forgetting another run of the same key removed the held one")
	}
	s.forget(second)
	if len(s.snapshot()) != 0 {
		t.Error("held runs left after every run ended")
	}
}

func TestSchedulerPrefetchAndReserve(t *testing.T) {
	s := newScheduler(2, nil)
	if s.prefetch() != 0 {
		t.Error("prefetch before any run was measured")
	}
	s.take("x")
	s.free("x", time.Millisecond)
	if s.prefetch() != 16 {
		t.Errorf("prefetch after short runs = %d, want 16", s.prefetch())
	}
	for range 50 {
		s.take("x")
		s.free("x", time.Second)
	}
	if s.prefetch() != 0 {
		t.Errorf("prefetch after long runs = %d, want 0", s.prefetch())
	}
	// A worker freed by a hand-off that did not happen teaches nothing.
	runs := s.runs
	s.take("x")
	s.free("x", -1)
	if s.runs != runs {
		t.Error("an unreserved worker counted as a run")
	}
	if s.reserve("x") {
		t.Error("reserve succeeded while the queue is not drained")
	}
	s.setIdle(true)
	for i := range 2 {
		if !s.reserve("x") {
			t.Fatalf("reserve %d failed on an idle engine with free workers", i)
		}
	}
	if s.reserve("x") || s.idle {
		t.Error("reserve with every worker busy: want refused, and the queue no longer idle")
	}
}
