package spool_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// TestWorkflowCrash SIGKILLs engines that run workflows, at random moments
// and right after a step's handler returns (its outcome committing or
// about to), several times over, then lets a last engine finish. Every
// step must exist once, complete once as seen by its committed output, and
// never start again once its completion committed; every workflow must
// complete.
func TestWorkflowCrash(t *testing.T) {
	db := filepath.Join(t.TempDir(), "spool.db")
	tree := []spool.Step{
		{Kind: crashKind, Next: []spool.Step{{Kind: crashKind, Next: []spool.Step{{Kind: crashKind}}}, {Kind: crashKind}}},
		{Kind: crashKind, Next: []spool.Step{{Kind: crashKind}}},
		{Kind: crashKind},
	}
	const workflows, stepsEach = 6, 7

	// Each kill may cost a step an attempt (an engine claims ahead of its
	// workers): steps inherit their workflow's MaxAttempts.
	cfg := crashConfig(db)
	cfg.MaxAttempts = 50
	e, err := spool.Open(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Register(crashKind, spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	in, err := e.CreateFile(ctxT(t), strings.NewReader("input"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range workflows {
		wf, err := e.Create(ctxT(t), spool.Request{Kind: "workflow", FileID: in.ID, Workflow: tree})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, wf.ID)
	}
	if err := e.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	// committed returns the steps whose completion is committed.
	committed := func() map[string]bool {
		e, _ := crashOpen(t, db, 1, func(context.Context, *spool.Job) error { return nil })
		defer e.Close(context.Background())
		out := map[string]bool{}
		for _, id := range ids {
			page, err := e.List(ctxT(t), &spool.ListParams{ParentID: id, Status: spool.StatusCompleted, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page.Tasks {
				out[s.ID] = true
			}
		}
		return out
	}

	done := map[string]bool{}
	for round := range 8 {
		c := startCrashChild(t, "round", "workflow", db, 2, 0)
		c.await("ready", func() bool { return len(c.find("ready")) == 1 })
		if round%2 == 0 {
			// Right after a handler returns: its outcome is being recorded.
			n := 1 + rand.IntN(4)
			deadline := time.Now().Add(5 * time.Second)
			for len(c.find("returning")) < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		} else {
			time.Sleep(time.Duration(20+rand.IntN(150)) * time.Millisecond)
		}
		c.kill()
		for _, f := range c.find("started") {
			if done[f[1]] {
				t.Errorf("round %d: step %s started again after its completion committed", round, f[1])
			}
		}
		for id := range committed() {
			done[id] = true
		}
	}

	// The last engine finishes the work.
	var mu sync.Mutex
	var started []string
	e, _ = crashOpen(t, db, 2, func(ctx context.Context, job *spool.Job) error {
		mu.Lock()
		started = append(started, job.Task.ID)
		mu.Unlock()
		_, err := job.CreateFile(ctx, strings.NewReader(job.Task.Step), &spool.File{Filename: "out.txt"})
		return err
	})
	if err := e.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		wf, err := e.Wait(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if wf.Status != spool.StatusCompleted || len(wf.Workflow) != stepsEach || len(wf.Results.Passed) != stepsEach {
			t.Errorf("workflow %s: %s %q, %d steps listed, results %+v", id, wf.Status, wf.Error, len(wf.Workflow), wf.Results)
		}
		page, err := e.List(ctxT(t), &spool.ListParams{ParentID: id, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, s := range page.Tasks {
			paths = append(paths, s.Step)
			files, err := e.ListFiles(ctxT(t), &spool.FileListParams{TaskID: s.ID})
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != spool.StatusCompleted || len(files) != 1 {
				t.Errorf("step %s of %s: %s with %d committed outputs, want completed with 1", s.Step, id, s.Status, len(files))
			}
		}
		slices.Sort(paths)
		if len(paths) != stepsEach || len(slices.Compact(paths)) != stepsEach {
			t.Errorf("workflow %s has steps %v, want %d distinct", id, paths, stepsEach)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range started {
		if done[id] {
			t.Errorf("step %s ran again in the last engine after its completion committed", id)
		}
	}
	t.Logf("%d of %d steps completed before the last engine", len(done), workflows*stepsEach)
}
