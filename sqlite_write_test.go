package spool_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// openStoreAt opens a SQLite store on a new file, closed when the test
// ends, and a plain connection pool on the same file.
func openStoreAt(t *testing.T) (spool.Store, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.db")
	st, err := spool.OpenSQLite(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return st, raw
}

func newTask(id string) *spool.Task {
	now := time.Now()
	return &spool.Task{ID: id, Kind: "x", Status: spool.StatusPending, Created: now, Updated: now}
}

// An Apply whose returned row cannot be decoded after its UPDATE ran fails
// and leaves nothing behind: not the change, not its event (found in
// review: a change without hook ran with no savepoint, so the failure was
// reported for a committed change).
func TestApplyDecodeFailureUndone(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"status", "progress"} {
		t.Run(name, func(t *testing.T) {
			st, raw := openStoreAt(t)
			tk := newTask("task_bad")
			tk.Status, tk.Attempt = spool.StatusProcessing, 1
			if _, err := st.CreateTasks(ctx, []*spool.Task{tk}); err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec(`UPDATE tasks SET options = '{"x":' WHERE id = 'task_bad'`); err != nil {
				t.Fatal(err)
			}
			events := func() (n int) {
				if err := raw.QueryRow(`SELECT COUNT(*) FROM events WHERE task_id = 'task_bad'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			before := events()
			ch := &spool.Change{ID: "task_bad", To: spool.StatusCompleted}
			if name == "progress" {
				ch = &spool.Change{ID: "task_bad", Progress: 50}
			}
			_, err := st.Apply(ctx, ch)
			if err == nil {
				t.Log("the store read the row back despite its options: nothing to check")
				return
			}
			var status string
			var progress int
			if err := raw.QueryRow(`SELECT status, progress FROM tasks WHERE id = 'task_bad'`).Scan(&status, &progress); err != nil {
				t.Fatal(err)
			}
			if status != string(spool.StatusProcessing) || progress != 0 {
				t.Errorf("Apply failed (%v), yet the task is %s at %d%%", err, status, progress)
			}
			if n := events(); n != before {
				t.Errorf("Apply failed (%v), yet %d events were written", err, n-before)
			}
		})
	}
}
