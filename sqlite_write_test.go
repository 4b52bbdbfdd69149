package spool_test

import (
	"context"
	"database/sql"
	"errors"
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

// lockDB takes the database's write lock on a connection of raw's and
// gives it back after d; the returned channel is closed then.
func lockDB(t *testing.T, raw *sql.DB, d time.Duration) <-chan struct{} {
	t.Helper()
	ctx := context.Background()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(d)
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
	}()
	t.Cleanup(func() { <-released })
	return released
}

func newTask(id string) *spool.Task {
	now := time.Now()
	return &spool.Task{ID: id, Kind: "x", Status: spool.StatusPending, Created: now, Updated: now}
}

// A write whose deadline passes while another connection holds the
// database's lock returns the context's error at once and is not made;
// a write with a longer deadline in the same wait is made once the lock is
// free (found in review: a Create with a 300 ms deadline returned after
// 8 s). Alone, the caller commits on its own goroutine; behind a write
// that waits, it is queued for the writer's goroutine.
func TestWriteDeadlineWhileLocked(t *testing.T) {
	for _, behind := range []bool{false, true} {
		name := "alone"
		if behind {
			name = "queued"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, raw := openStoreAt(t)
			if _, err := st.CreateTasks(ctx, []*spool.Task{newTask("task_a")}); err != nil {
				t.Fatal(err)
			}
			released := lockDB(t, raw, 5*time.Second)
			// With behind, task_long leads and waits for the lock, and
			// task_long2 waits in the queue beside the short writes.
			var longs []string
			if behind {
				longs = []string{"task_long", "task_long2"}
			}
			long := make(chan error, len(longs))
			lctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			for _, id := range longs {
				go func() {
					_, err := st.CreateTasks(lctx, []*spool.Task{newTask(id)})
					long <- err
				}()
				time.Sleep(100 * time.Millisecond)
			}
			short := func(write func(context.Context) error) {
				t.Helper()
				sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				err := write(sctx)
				el := time.Since(start)
				t.Logf("write with a 300ms deadline: %v after %v", err, el)
				if !errors.Is(err, context.DeadlineExceeded) || el > 2*time.Second {
					t.Errorf("want %v within 2s", context.DeadlineExceeded)
				}
			}
			short(func(ctx context.Context) error {
				_, err := st.CreateTasks(ctx, []*spool.Task{newTask("task_short")})
				return err
			})
			short(func(ctx context.Context) error {
				_, err := st.Apply(ctx, &spool.Change{ID: "task_a", To: spool.StatusCancelled})
				return err
			})
			select {
			case <-released:
			case <-time.After(30 * time.Second):
				t.Fatal("lock never released")
			}
			for range longs {
				select {
				case err := <-long:
					if err != nil {
						t.Errorf("create with a long deadline: %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("create with a long deadline never returned")
				}
			}
			for _, id := range longs {
				if _, err := st.GetTask(ctx, id); err != nil {
					t.Errorf("%s: %v", id, err)
				}
			}
			// A write after the lock: the writer has settled what it held.
			if _, err := st.CreateTasks(ctx, []*spool.Task{newTask("task_after")}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.GetTask(ctx, "task_short"); !errors.Is(err, spool.ErrNotFound) {
				t.Errorf("task_short after its deadline: %v, want ErrNotFound", err)
			}
			if got, err := st.GetTask(ctx, "task_a"); err != nil || got.Status != spool.StatusPending {
				t.Errorf("task_a after an Apply past its deadline: %v, %v; want pending", got, err)
			}
		})
	}
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
