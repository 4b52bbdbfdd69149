package spool

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

type planCase struct {
	name, q string
	args    []any
}

// The hot queries read their indexes in order: no full scan, no sort. A
// plan that sorts works on an empty table and in every functional test,
// and costs milliseconds on a big queue (a claim once sorted every run of
// equal due times).
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
		{"claim three kinds", claimQuery(3), []any{"o", 1, 2, 10, "x", "y", "z"}},
		{"get", selectTask, []any{"task_x"}},
		{"events", selectEvents, []any{1, 10}},
		{"recover", recoverTasks, []any{1, "[]"}},
	}
	for _, st := range statuses {
		if st == StatusCompleted {
			continue // not indexed: listed by walking the ids, checked below
		}
		q, args, _, _ := listQuery(&ListParams{Status: st})
		cases = append(cases, planCase{"list " + string(st), q, append(args, 10, 0)})
	}
	for _, c := range cases {
		rows, err := s.rdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+c.q, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "; ")
		if strings.Contains(all, "TEMP B-TREE") || strings.Contains(all, "SCAN tasks") {
			t.Errorf("%s: plan sorts or scans: %s", c.name, all)
		}
	}
	// Completed tasks are listed by walking the ids, newest first, without
	// a sort.
	q, args, _, _ := listQuery(&ListParams{Status: StatusCompleted})
	var detail []string
	rows, err := s.rdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, append(args, 10, 0)...)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, notused int
		var d string
		rows.Scan(&id, &parent, &notused, &d)
		detail = append(detail, d)
	}
	rows.Close()
	if all := strings.Join(detail, "; "); strings.Contains(all, "TEMP B-TREE") {
		t.Errorf("list completed sorts: %s", all)
	}
}
