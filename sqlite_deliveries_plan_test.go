package spool

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// The delivery queries seek their indexes: a claim and the next due time
// read the due index in order; a dispatch reads its range of events by
// seq and each task by id (its window functions sort only that range).
func TestDeliveryQueryPlans(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "plan.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqliteStore)
	for _, c := range []planCase{
		{"claim deliveries", `SELECT seq FROM deliveries INDEXED BY deliveries_due
			WHERE due IS NOT NULL AND due <= ?1 ORDER BY due LIMIT (SELECT ?2)`, []any{1, 10}},
		{"next delivery", nextDelivery, nil},
	} {
		if all := explain(t, s, c.q, c.args...); strings.Contains(all, "TEMP B-TREE") || strings.Contains(all, "SCAN deliveries") {
			t.Errorf("%s: plan sorts or scans: %s", c.name, all)
		}
	}
	all := explain(t, s, dispatchDeliveries, 1, 2, "", false, 5)
	for _, want := range []string{"SEARCH e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
		"SEARCH t USING INDEX sqlite_autoindex_tasks_1 (id=?)", "SEARCH p USING INDEX deliveries_task (task_id=?)"} {
		if !strings.Contains(all, want) {
			t.Errorf("dispatch: plan lacks %q: %s", want, all)
		}
	}
	if strings.Contains(all, "SCAN e") || strings.Contains(all, "SCAN t ") || strings.Contains(all, "SCAN p") {
		t.Errorf("dispatch: plan scans a table: %s", all)
	}
}
