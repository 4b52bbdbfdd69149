package spool

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type planCase struct {
	name, q string
	args    []any
}

// The hot queries read their indexes in order: no full scan, no sort. A
// plan that sorts or walks too much works on an empty table and in every
// functional test, and costs milliseconds on a big queue (a claim once
// sorted every run of equal due times; another walked other kinds'
// backlogs).
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "plan.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqliteStore)
	cases := []planCase{
		{"claim one kind", claimQuery(1), []any{"o", 1, 2, 10, "x"}},
		{"get", selectTask, []any{"task_x"}},
		{"events", selectEvents, []any{1, 10}},
		{"recover", recoverTasks, []any{1, "[]"}},
	}
	for _, st := range statuses {
		if st == StatusCompleted {
			continue // not indexed: listed by walking the ids, checked below
		}
		q, args, _, _ := listQuery(&ListParams{Status: st}, "")
		cases = append(cases, planCase{"list " + string(st), q, append(args, 10, 0)})
	}
	for _, c := range cases {
		all := explain(t, s, c.q, c.args...)
		if strings.Contains(all, "TEMP B-TREE") || strings.Contains(all, "SCAN tasks") {
			t.Errorf("%s: plan sorts or scans: %s", c.name, all)
		}
		if strings.HasPrefix(c.name, "claim") && !strings.Contains(all, "tasks_due (kind=? AND due>? AND due<?)") {
			t.Errorf("%s: does not seek the kind in the runnable index: %s", c.name, all)
		}
	}
	// A claim of several kinds seeks each kind's entries (so that another
	// kind's backlog is never walked) and sorts only what those give.
	plan := explain(t, s, claimQuery(3), "o", 1, 2, 10, "x", "y", "z")
	if n := strings.Count(plan, "tasks_due (kind=? AND due>? AND due<?)"); n != 3 || strings.Contains(plan, "SCAN tasks") {
		t.Errorf("claim of three kinds: %d seeks by kind, want 3: %s", n, plan)
	}
	// Completed tasks are listed by walking the ids, newest first, without
	// a sort.
	q, args, _, _ := listQuery(&ListParams{Status: StatusCompleted}, "")
	if all := explain(t, s, q, append(args, 10, 0)...); strings.Contains(all, "TEMP B-TREE") {
		t.Errorf("list completed sorts: %s", all)
	}
}

// explain returns q's query plan, one step after another.
func explain(t *testing.T, s *sqliteStore, q string, args ...any) string {
	t.Helper()
	rows, err := s.rdb.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// A page with several filters walks the index of the filter with the
// fewest rows: the planner, which knows only averages, walked every failed
// task for a rare kind's few.
func TestListIndexFewestRows(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "list.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqliteStore)
	now := time.Now().UTC()
	var tasks []*Task
	for i := range 600 {
		task := &Task{ID: fmt.Sprintf("task_%04d", i), Kind: "common", Status: StatusFailed, Created: now, Updated: now,
			MaxAttempts: 1, Options: map[string]any{"ref": "big"}}
		switch {
		case i%100 == 0:
			task.Kind = "rare"
		case i%2 == 0:
			task.Status, task.Options = StatusCompleted, map[string]any{"ref": "small"}
		}
		tasks = append(tasks, task)
	}
	if _, err := s.CreateTasks(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lp   ListParams
		want string
	}{
		{ListParams{Kind: "rare", Status: StatusFailed}, "tasks_kind"},      // 6 rare, 300 failed
		{ListParams{Kind: "common", Status: StatusPending}, "tasks_status"}, // none pending
		{ListParams{Ref: "small", Status: StatusFailed}, "tasks_ref"},       // 297 small (all completed)
		{ListParams{Ref: "big", Kind: "rare"}, "tasks_kind"},
		{ListParams{Kind: "rare", Status: StatusCompleted}, ""}, // completed is not in the status index
		{ListParams{Kind: "rare"}, ""},                          // one filter: the planner's
		{ListParams{ParentID: "task_0001", Kind: "rare"}, "tasks_parent"},
	}
	for _, tt := range tests {
		got, err := s.listIndex(ctx, &tt.lp)
		if err != nil || got != tt.want {
			t.Errorf("listIndex(%+v) = %q, %v; want %q", tt.lp, got, err, tt.want)
		}
		q, args, _, _ := listQuery(&tt.lp, got)
		if plan := explain(t, s, q, append(args, 10, 0)...); got != "" && !strings.Contains(plan, got) {
			t.Errorf("%+v: plan does not walk %s: %s", tt.lp, got, plan)
		}
		want := 0
		for _, task := range tasks {
			if (tt.lp.Kind == "" || task.Kind == tt.lp.Kind) && (tt.lp.Status == "" || task.Status == tt.lp.Status) &&
				(tt.lp.Ref == "" || task.Options["ref"] == tt.lp.Ref) && (tt.lp.ParentID == "" || task.ParentID == tt.lp.ParentID) {
				want++
			}
		}
		if page, err := s.ListTasks(ctx, &tt.lp); err != nil || len(page.Tasks) != min(want, 20) {
			t.Errorf("ListTasks(%+v): %d tasks, %v; want %d", tt.lp, len(page.Tasks), err, min(want, 20))
		}
	}
	// Every index it may choose can serve its filter (a partial index
	// SQLite could not use would fail the query).
	for _, lp := range []ListParams{{ParentID: "task_0001", Status: StatusFailed}, {ParentID: "task_0001", Ref: "big"},
		{Folder: "f", Kind: "rare"}, {Folder: "f", Ref: "big", Status: StatusFailed, After: "task_0300"}} {
		if _, err := s.ListTasks(ctx, &lp); err != nil {
			t.Errorf("ListTasks(%+v): %v", lp, err)
		}
	}
}

// A repair's search for stalled workflows seeks the status index and
// probes each workflow's steps by the parent index, with no scan or sort.
func TestStalledWorkflowsPlan(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "plan.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all := explain(t, st.(*sqliteStore), selectStalled, "waiting", "", 100)
	for _, want := range []string{"SEARCH w USING INDEX tasks_status (status=? AND id>?)", "USING INDEX tasks_parent (parent_id=?)"} {
		if !strings.Contains(all, want) {
			t.Errorf("plan lacks %q: %s", want, all)
		}
	}
	if strings.Contains(all, "SCAN") || strings.Contains(all, "TEMP B-TREE") {
		t.Errorf("plan scans or sorts: %s", all)
	}
}
