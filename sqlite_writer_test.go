package spool

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func testWriter(t *testing.T) *sqlWriter {
	t.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*sqliteStore).w
}

// until waits for cond, checked under the writer's lock.
func until(t *testing.T, w *sqlWriter, cond func() bool) {
	t.Helper()
	for range 5000 {
		w.mu.Lock()
		ok := cond()
		w.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition never held")
}

// busy starts a write that holds the writer until the returned function is
// called.
func busy(t *testing.T, w *sqlWriter) (release func()) {
	block, started := make(chan struct{}), make(chan struct{})
	go w.do(context.Background(), func(context.Context, *sqlTx) error {
		close(started)
		<-block
		return nil
	})
	<-started
	return func() { close(block) }
}

// Closing while one caller commits and another waits behind it answers
// the waiting one (found in review: it hung forever).
func TestWriterCloseAnswersQueued(t *testing.T) {
	w := testWriter(t)
	release := busy(t, w)
	queued := make(chan error, 1)
	go func() { queued <- w.do(context.Background(), func(context.Context, *sqlTx) error { return nil }) }()
	until(t, w, func() bool { return len(w.queue) == 1 })
	closed := make(chan error, 1)
	go func() { closed <- w.close() }()
	until(t, w, func() bool { return w.closed })
	release()
	select {
	case err := <-queued:
		if !errors.Is(err, errStoreClosed) && err != nil {
			t.Errorf("queued op: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the queued op never got an answer")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("close hangs")
	}
	if err := w.do(context.Background(), func(context.Context, *sqlTx) error { return nil }); !errors.Is(err, errStoreClosed) {
		t.Errorf("write after close = %v, want errStoreClosed", err)
	}
}

// A panic in an op that the writer's goroutine runs (writes contended)
// reaches the op's caller, not the writer's goroutine, and undoes only that
// op: the others of its batch commit.
func TestWriterPanicReachesCaller(t *testing.T) {
	w := testWriter(t)
	ctx := context.Background()
	release := busy(t, w)
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
			if _, err := tx.exec(ctx, "INSERT INTO cursors (name, seq) VALUES ('doomed', 1)"); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	other := make(chan error, 1)
	go func() {
		other <- w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
			_, err := tx.exec(ctx, "INSERT INTO cursors (name, seq) VALUES ('kept', 2)")
			return err
		})
	}()
	until(t, w, func() bool { return len(w.queue) == 2 })
	release()
	select {
	case r := <-panicked:
		if r != "boom" {
			t.Fatalf("caller recovered %v, want boom", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the panicking op never returned")
	}
	if err := <-other; err != nil {
		t.Fatalf("the other op of the batch: %v", err)
	}
	var names []string
	err := w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		rows, err := tx.query(ctx, "SELECT name FROM cursors ORDER BY name")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			rows.Scan(&n)
			names = append(names, n)
		}
		return rows.Err()
	})
	if err != nil || len(names) != 1 || names[0] != "kept" {
		t.Fatalf("cursors after the batch: %v, %v; want only kept", names, err)
	}
}

// A queued op whose context ends before the writer runs it returns the
// context's error at once and is never run; one whose context ends after
// it ran, in the transaction being committed, returns that commit's
// outcome. Other ops of the batch are unaffected.
func TestWriterCancelQueued(t *testing.T) {
	w := testWriter(t)
	ctx := context.Background()
	insert := func(name string, ran chan<- struct{}, block <-chan struct{}) func(context.Context, *sqlTx) error {
		return func(ctx context.Context, tx *sqlTx) error {
			if ran != nil {
				close(ran)
			}
			if block != nil {
				<-block
			}
			_, err := tx.exec(ctx, "INSERT INTO cursors (name, seq) VALUES (?, 1)", name)
			return err
		}
	}

	// Withdrawn while the writer is busy with another op.
	release := busy(t, w)
	wctx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	withdrawn := make(chan error, 1)
	go func() { withdrawn <- w.do(wctx, insert("withdrawn", ran, nil)) }()
	until(t, w, func() bool { return len(w.queue) == 1 })
	cancel()
	select {
	case err := <-withdrawn:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("withdrawn op: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled queued op waited for the writer")
	}
	release()

	// Cancelled after it ran, while a later op of its batch holds the
	// transaction open.
	release = busy(t, w)
	actx, cancelA := context.WithCancel(ctx)
	ranA, ranB, blockB := make(chan struct{}), make(chan struct{}), make(chan struct{})
	resA, resB := make(chan error, 1), make(chan error, 1)
	go func() { resA <- w.do(actx, insert("a", ranA, nil)) }()
	until(t, w, func() bool { return len(w.queue) == 1 })
	go func() { resB <- w.do(ctx, insert("b", ranB, blockB)) }()
	until(t, w, func() bool { return len(w.queue) == 2 })
	release()
	<-ranA
	<-ranB
	cancelA()
	select {
	case err := <-resA:
		t.Fatalf("op a returned %v before its transaction ended", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(blockB)
	if err := <-resA; err != nil {
		t.Errorf("op a, committed after its context ended: %v, want nil", err)
	}
	if err := <-resB; err != nil {
		t.Errorf("op b: %v", err)
	}
	select {
	case <-ran:
		t.Error("the withdrawn op ran")
	default:
	}
	var names []string
	err := w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		rows, err := tx.query(ctx, "SELECT name FROM cursors ORDER BY name")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			rows.Scan(&n)
			names = append(names, n)
		}
		return rows.Err()
	})
	if err != nil || len(names) != 2 || names[0] != "a" || names[1] != "b" {
		t.Fatalf("cursors: %v, %v; want a and b", names, err)
	}
}

// Outcomes with a LateHook share one UPDATE and run their hooks after it;
// a failing hook undoes its own change only, the others applied one by one.
func TestMergedLateHooks(t *testing.T) {
	for _, failing := range []bool{false, true} {
		st, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "w.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s := st.(*sqliteStore)
		ctx := context.Background()
		now := time.Now().UTC()
		var ids []string
		for i := range 3 {
			task := &Task{ID: fmt.Sprintf("task_%d", i), Kind: "k", Status: StatusPending, Created: now, Updated: now, MaxAttempts: 1}
			if _, err := s.CreateTasks(ctx, []*Task{task}); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, task.ID)
		}
		if got, err := s.ClaimTasks(ctx, &ClaimParams{Owner: "me", Now: time.Now(), Lease: time.Minute,
			Batches: []ClaimBatch{{Kinds: []string{"k"}, Limit: 3}}}); err != nil || len(got) != 3 {
			t.Fatalf("claim: %d, %v", len(got), err)
		}
		sawOthers := make([]int, 3) // tasks completed when each hook ran
		boom := errors.New("hook failed")
		release := busy(t, s.w)
		errs := make(chan error, 3)
		for i, id := range ids {
			ch := &Change{ID: id, To: StatusCompleted, Owner: "me", NoResult: true, LateHook: true,
				Hook: func(ctx context.Context, tx Tx, _ *Task) error {
					n := 0
					for _, other := range ids {
						if o, err := tx.GetTask(ctx, other); err == nil && o.Status == StatusCompleted {
							n++
						}
					}
					sawOthers[i] = n
					if failing && i == 1 {
						return boom
					}
					return tx.CreateFiles(ctx, []*File{{ID: "file_" + id, Object: "source", Key: id}})
				}}
			go func() { _, err := s.Apply(ctx, ch); errs <- err }()
			until(t, s.w, func() bool { return len(s.w.queue) == i+1 })
		}
		release()
		var failed int
		for range 3 {
			if err := <-errs; errors.Is(err, boom) {
				failed++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		want := map[bool]int{false: 0, true: 1}[failing]
		if failed != want {
			t.Errorf("failing=%v: %d Applies failed, want %d", failing, failed, want)
		}
		for i, id := range ids {
			got, err := s.GetTask(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			_, ferr := s.GetFile(ctx, "file_"+id)
			undone := failing && i == 1
			if undone != (got.Status == StatusProcessing) || undone != errors.Is(ferr, ErrNotFound) {
				t.Errorf("failing=%v: %s is %s, its file: %v", failing, id, got.Status, ferr)
			}
		}
		if !failing && sawOthers[0] != 3 {
			// Merged: the first hook runs after all three changes.
			t.Errorf("the first hook saw %d tasks completed, want 3 (one shared UPDATE)", sawOthers[0])
		}
	}
}

// The planner has statistics after a restart: the store refreshes them
// when it opens and closes (sqlite_planner.go), so that a list filtered on
// a rare kind and a status takes the kind's index.
func TestPlannerStatisticsAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stats.db")
	st, err := OpenSQLite(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	tasks := make([]*Task, 2000)
	for i := range tasks {
		kind := "common"
		if i%100 == 0 {
			kind = "rare"
		}
		tasks[i] = &Task{ID: fmt.Sprintf("task_%06d", i), Kind: kind, Status: StatusCompleted, Created: now, Updated: now, MaxAttempts: 1}
	}
	if _, err := st.CreateTasks(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = OpenSQLite(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var n int
	if err := st.(*sqliteStore).queryRow(ctx, `SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'tasks'`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("sqlite_stat1 rows for tasks: %d, %v; want some", n, err)
	}
}

// A store that runs long refreshes the statistics on its writer every
// optimizeEvery, between transactions, not only when it opens and closes.
func TestPlannerStatisticsWhileRunning(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "stats.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := st.(*sqliteStore)
	stats := func() int {
		t.Helper()
		var n int
		if err := s.queryRow(ctx, `SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'tasks' AND stat IS NOT NULL`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	now := time.Now().UTC()
	tasks := make([]*Task, 2000)
	for i := range tasks {
		tasks[i] = &Task{ID: fmt.Sprintf("task_%06d", i), Kind: "k", Status: StatusCompleted, Created: now, Updated: now, MaxAttempts: 1}
	}
	if _, err := st.CreateTasks(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	if n := stats(); n != 0 {
		t.Fatalf("the empty table at open has %d statistics rows; the test needs none", n)
	}
	// An hour later (as the writer sees it), the writer's next periodic
	// check, every checkpointEvery commits, refreshes them.
	if err := s.w.do(ctx, func(context.Context, *sqlTx) error {
		s.w.optimized = time.Now().Add(-optimizeEvery - time.Minute)
		s.w.commits = checkpointEvery*10 - 1 // this commit is the check's
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := stats(); n == 0 {
		t.Error("no statistics for tasks after the writer's hourly refresh")
	}
}
