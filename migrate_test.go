package spool_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolrun/spool"
)

// A database made by an earlier spool keeps its tasks, counts and event
// sequence through the migrations that follow.
func TestMigrateKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"0001_init.sql", "0002_files.sql"} {
		b, err := os.ReadFile(filepath.Join("migrations", "sqlite", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(b)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("PRAGMA user_version = 2")
	for i, st := range []string{"pending", "pending", "completed", "failed", "processing"} {
		kind := []string{"http", "ingest"}[i%2]
		exec(`INSERT INTO tasks (id, kind, status, created, updated) VALUES (?, ?, 'pending', ?, ?)`,
			"task_old"+string(rune('a'+i)), kind, 1000+i, 1000+i)
		if st != "pending" {
			exec(`UPDATE tasks SET status = ?, updated = ? WHERE id = ?`, st, 2000+i, "task_old"+string(rune('a'+i)))
		}
	}
	// A workflow step refers to its parent; another's parent was deleted
	// with foreign keys off.
	exec(`INSERT INTO tasks (id, kind, status, parent_id, created, updated) VALUES ('task_oldstep', 'http', 'pending', 'task_olda', 3000, 3000)`)
	exec(`INSERT INTO tasks (id, kind, status, parent_id, created, updated) VALUES ('task_orphan', 'http', 'completed', 'task_gone', 3000, 3000)`)
	var lastSeq int64
	if err := db.QueryRow("SELECT MAX(seq) FROM events").Scan(&lastSeq); err != nil {
		t.Fatal(err)
	}
	// Every event was delivered and pruned: only the sequence remembers.
	exec("DELETE FROM events")
	db.Close()

	e, err := spool.Open(ctx, spool.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	st, err := e.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[spool.Status]int{spool.StatusPending: 3, spool.StatusCompleted: 2, spool.StatusFailed: 1, spool.StatusProcessing: 1}
	for s, n := range want {
		if st.ByStatus[s] != n {
			t.Errorf("after migration %s = %d, want %d (%v)", s, st.ByStatus[s], n, st.ByStatus)
		}
	}
	if st.ByKind["http"][spool.StatusPending] != 2 || st.ByKind["ingest"][spool.StatusPending] != 1 {
		t.Errorf("by kind after migration: %v", st.ByKind)
	}
	if _, err := e.Get(ctx, "task_olda"); err != nil {
		t.Errorf("old task: %v", err)
	}
	if step, err := e.Get(ctx, "task_oldstep"); err != nil || step.ParentID != "task_olda" {
		t.Errorf("old step: %+v, %v", step, err)
	}
	if orphan, err := e.Get(ctx, "task_orphan"); err != nil || orphan.ParentID != "" {
		t.Errorf("orphaned step: %+v, %v; want kept without its parent", orphan, err)
	}
	// A new event's sequence continues after the old ones.
	if _, err := e.Create(ctx, spool.Request{Kind: "http", URL: "https://example.com/x"}); err != nil {
		t.Fatal(err)
	}
	evs, err := e.Store().Events(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d events, want the new task's one", len(evs))
	}
	db, err = sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seq int64
	if err := db.QueryRow("SELECT MAX(seq) FROM events WHERE task_id != ''").Scan(&seq); err != nil {
		t.Fatal(err)
	}
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check after migration: %q, %v", check, err)
	}
	if rows, err := db.Query("PRAGMA foreign_key_check"); err != nil || rows.Next() {
		t.Errorf("foreign_key_check after migration finds violations (%v)", err)
	} else {
		rows.Close()
	}
	if seq <= lastSeq {
		t.Errorf("new event's seq %d, want > %d", seq, lastSeq)
	}
}
