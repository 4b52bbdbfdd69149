package spool

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// Deleting a task and retention find what they delete through indexes:
// retention runs over a table of millions of finished tasks, and a file's
// users are looked up for every file a deleted task produced.
func TestDeleteQueryPlans(t *testing.T) {
	st, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "plan.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqliteStore)
	for _, c := range []struct {
		name, q string
		args    []any
		want    []string
	}{
		{"finished", selectFinished, []any{"failed", 1, 10, "task_1"},
			[]string{"tasks_status (status=? AND id<?)"}},
		{"completed", selectCompleted, []any{"completed", 1, 10, "task_1"},
			[]string{"(id<?)"}},
		{"file users", deleteFileIfUnused, []any{"file_x"},
			[]string{"tasks_file (file_id=?)", "tasks_input_file (<expr>=?)"}},
		{"unfinished file users", fileUsers, []any{"file_x"},
			[]string{"tasks_file (file_id=?)", "tasks_input_file (<expr>=?)"}},
		{"owned files", ownedFilesQuery, []any{`["task_x"]`},
			[]string{"files_task (task_id=?)", "tasks_parent (parent_id=?)"}},
	} {
		plan := explain(t, s, c.q, c.args...)
		if strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "SCAN tasks") || strings.Contains(plan, "SCAN files") {
			t.Errorf("%s: plan sorts or scans: %s", c.name, plan)
		}
		for _, w := range c.want {
			if !strings.Contains(plan, w) {
				t.Errorf("%s: plan does not use %s: %s", c.name, w, plan)
			}
		}
	}
}
