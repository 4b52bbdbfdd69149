package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// The tasks commands on a database file, and run with a workflow: one line
// of progress per step, and every step's output.
func TestTasksOnDatabase(t *testing.T) {
	dir := t.TempDir()
	in := writePNG(t, dir, 120, 60)
	db := filepath.Join(dir, "spool.db")
	steps := `[{"kind": "image", "width": 32, "ref": "small"}, {"kind": "image", "width": 16, "format": "jpeg", "ref": "tiny"}]`
	r := runCLI(t, nil, "run", "--db", db, "workflow", in, "workflow="+steps)
	if r.code != 0 {
		t.Fatalf("run workflow: exit %d\n%s", r.code, r.stderr)
	}
	var wf spool.Task
	if err := json.Unmarshal([]byte(r.stdout), &wf); err != nil {
		t.Fatal(err)
	}
	if len(wf.Workflow) != 2 {
		t.Fatalf("workflow lists %d steps, want 2", len(wf.Workflow))
	}
	for _, want := range []string{"workflow[0] image small: status completed\n", "workflow[1] image tiny: status completed\n"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if n := len(outputLine.FindAllString(r.stderr, -1)); n != 2 {
		t.Errorf("%d output lines, want one per step:\n%s", n, r.stderr)
	}

	// A pending task: stored by an engine that does not run it.
	ctx := context.Background()
	e, err := spool.Open(ctx, spool.Config{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	pending, err := e.Create(ctx, spool.Request{Kind: "image", FileID: wf.Input.ID, Options: map[string]any{"width": 8}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"SPOOL_DB": db}
	r = runCLI(t, env, "tasks", "ls", "--parent", wf.ID)
	if r.code != 0 || strings.Count(r.stdout, "\ntask_") != 2 {
		t.Errorf("tasks ls --parent: exit %d, want the two steps:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, env, "tasks", "ls", "--json", "--limit", "1")
	var page []spool.Task
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page) != 1 || page[0].ID != pending.ID {
		t.Errorf("tasks ls --json --limit 1: %v, want the newest task %s:\n%s", err, pending.ID, r.stdout)
	}
	if !strings.Contains(r.stderr, "more: the same with --after "+pending.ID) {
		t.Errorf("tasks ls does not say how to list the next page:\n%s", r.stderr)
	}
	if r = runCLI(t, env, "tasks", "get", wf.ID); r.code != 0 || !strings.Contains(r.stdout, `"workflow"`) {
		t.Errorf("tasks get: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = runCLI(t, env, "tasks", "wait", "--timeout", "300ms", pending.ID); r.code != exitFailed ||
		!strings.Contains(r.stderr, "stopped waiting") {
		t.Errorf("tasks wait on a task nothing runs: exit %d\n%s", r.code, r.stderr)
	}
	if r = runCLI(t, env, "tasks", "cancel", pending.ID); r.code != 0 || !strings.Contains(r.stdout, `"cancelled"`) {
		t.Errorf("tasks cancel: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = runCLI(t, env, "tasks", "cancel", pending.ID); r.code != exitFailed || !strings.Contains(r.stderr, "already finished") {
		t.Errorf("tasks cancel of a cancelled task: exit %d\n%s", r.code, r.stderr)
	}
	if r = runCLI(t, env, "tasks", "wait", pending.ID); r.code != exitFailed || !strings.Contains(r.stdout, `"cancelled"`) {
		t.Errorf("tasks wait on a cancelled task: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = runCLI(t, env, "tasks", "get", "task_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A"); r.code != exitFailed || !strings.Contains(r.stderr, "not found") {
		t.Errorf("tasks get of an unknown task: exit %d\n%s", r.code, r.stderr)
	}
	if r = runCLI(t, nil, "tasks", "ls", "--db", filepath.Join(dir, "typo.db")); r.code != exitUsage || !strings.Contains(r.stderr, "no database at") {
		t.Errorf("tasks ls on a missing database: exit %d\n%s", r.code, r.stderr)
	}
	if r = runCLI(t, env, "tasks", "ls", "--status", "done"); r.code != exitUsage || !strings.Contains(r.stderr, "status") {
		t.Errorf("tasks ls --status done: exit %d\n%s", r.code, r.stderr)
	}
}

func TestKindsHere(t *testing.T) {
	r := runCLI(t, nil, "kinds")
	if r.code != 0 || !strings.Contains(r.stdout, "image") || !strings.Contains(r.stdout, "no chat provider configured") {
		t.Errorf("kinds: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, "kinds", "image")
	if r.code != 0 || !strings.Contains(r.stdout, "width") || !strings.Contains(r.stdout, "jpeg|png") {
		t.Errorf("kinds image: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Not a terminal: the descriptions whole, as the spec gives them.
	spec, _ := spool.BuiltinSpec("conditions")
	for _, o := range spec.Options {
		if first, _, _ := strings.Cut(o.Description, "\n"); len(first) > 70 {
			if r = runCLI(t, nil, "kinds", "conditions"); !strings.Contains(r.stdout, first) {
				t.Errorf("kinds conditions to a pipe cuts %s's description:\n%s", o.Name, r.stdout)
			}
		}
	}
	if r = runCLI(t, nil, "kinds", "nope"); r.code != exitUsage {
		t.Errorf("kinds nope: exit %d\n%s", r.code, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"help", "run"}, {"run", "-h"}, {"serve", "-h"}, {"tasks", "-h"}, {"kinds", "-h"}, {"tasks", "wait", "-h"}} {
		r := runCLI(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "Usage") {
			t.Errorf("%q: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	for _, args := range [][]string{{}, {"nope"}, {"tasks"}, {"tasks", "nope"}} {
		if r := runCLI(t, nil, args...); r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, r.code, exitUsage)
		}
	}
}

// tasks wait against a server reads the task again on each event of the
// server's stream, instead of waiting for its next poll.
func TestWaitFollowsEventStream(t *testing.T) {
	var done atomic.Bool
	firstGet := make(chan struct{}, 1)
	send := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Accept-Version") != apiVersion {
			http.Error(w, `{"error": {"kind": "token_invalid", "message": "no"}}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/tasks/task_1":
			status := "processing"
			if done.Load() {
				status = "completed"
			}
			fmt.Fprintf(w, `{"id": "task_1", "object": "task", "kind": "http", "status": %q, "progress": 50}`, status)
			select {
			case firstGet <- struct{}{}:
			default:
			}
		case "/events":
			if r.URL.Query().Get("task") != "task_1" {
				http.Error(w, "want ?task=task_1", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, ": spool events\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-send:
			case <-r.Context().Done():
				return
			}
			fmt.Fprint(w, "id: evt_1\nevent: task.completed\ndata: {}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cl, err := newClient(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	b := httpBackend{c: cl, poll: time.Hour} // only an event can end the wait
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := make(chan *spool.Task, 1)
	go func() {
		task, err := watch(ctx, func(ctx context.Context) (*spool.Task, error) { return b.get(ctx, "task_1") },
			b.events(ctx, "task_1"), b.pollInterval(), nopView{})
		if err != nil {
			t.Error(err)
		}
		got <- task
	}()
	<-firstGet
	done.Store(true)
	close(send)
	if task := <-got; task == nil || task.Status != spool.StatusCompleted {
		t.Fatalf("watch returned %+v, want the completed task", task)
	}
}
