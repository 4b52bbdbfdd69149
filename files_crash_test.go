package spool_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// TestCrashBetweenFileAndCompletion kills a process after its handler wrote
// an output file's bytes and before the task completed. The next engine on
// the file must leave no record of that file, sweep its bytes, and complete
// the task with an output that agrees with its file records.
func TestCrashBetweenFileAndCompletion(t *testing.T) {
	ctx := ctxT(t)
	db := filepath.Join(t.TempDir(), "spool.db")
	victim := startCrashChild(t, "victim", "files", db, 1, 1)
	victim.await("an output file written", func() bool { return len(victim.find("wrote")) == 1 })
	victim.kill()
	wrote := victim.find("wrote")[0]
	taskID, orphanID := wrote[1], wrote[2]

	// Before recovery: the bytes are there, the record is not.
	cfg := crashConfig(db)
	cfg.OrphanFileAge = time.Millisecond
	cfg.EventRetention = time.Second // maintenance, and so sweeps, every second
	e := openFile(t, cfg)
	st := storageOf(t, e)
	if !hasKeyOf(t, st, orphanID) {
		t.Fatalf("the killed attempt's bytes of %s are not in storage", orphanID)
	}
	if _, err := e.GetFile(ctx, orphanID); !errors.Is(err, spool.ErrNotFound) {
		t.Fatalf("a file record exists for an attempt that never completed: %v", err)
	}
	if task, _ := e.Get(ctx, taskID); task.Status == spool.StatusCompleted || len(task.Output) != 0 {
		t.Fatalf("task is %s with output %s before recovery", task.Status, task.Output)
	}

	e.Register(crashKind, spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		_, err := job.CreateFile(ctx, strings.NewReader("finished output"), &spool.File{Filename: "out.txt"})
		return err
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	task, err := e.Wait(ctx, taskID)
	if err != nil || task.Status != spool.StatusCompleted {
		t.Fatalf("task after recovery: %v, %v", task, err)
	}
	var out spool.File
	if err := json.Unmarshal(task.Output, &out); err != nil || out.ID == "" || out.ID == orphanID {
		t.Fatalf("output %s, want the new attempt's file", task.Output)
	}
	if rec, err := e.GetFile(ctx, out.ID); err != nil || rec.TaskID != taskID || rec.Filesize != int64(len("finished output")) {
		t.Errorf("the output's record: %+v, %v", rec, err)
	}
	if _, err := e.GetFile(ctx, orphanID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("the killed attempt's file has a record: %v", err)
	}
	// Once the task has finished, the next sweep deletes the orphaned bytes.
	deadline := time.Now().Add(10 * time.Second)
	for hasKeyOf(t, st, orphanID) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if hasKeyOf(t, st, orphanID) {
		t.Errorf("the orphaned bytes of %s were not swept", orphanID)
	}
	if !hasKeyOf(t, st, out.ID) {
		t.Errorf("the recorded output's bytes were swept")
	}
}

func hasKeyOf(t *testing.T, st spool.Storage, fileID string) bool {
	t.Helper()
	found := false
	err := st.Walk(context.Background(), func(key string, _ time.Time) error {
		if strings.Contains(key, fileID+"/") {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
