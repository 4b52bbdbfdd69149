package spooltest

import (
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spoolrun/spool"
)

// file returns a file record produced by the task taskID ("" for an upload).
func file(taskID string) *spool.File {
	id := newID("file_")
	key := id + "/out.bin"
	if taskID != "" {
		key = taskID + "/" + key
	}
	return &spool.File{ID: id, Object: "source", Filename: "out.bin", Key: key, TaskID: taskID}
}

func createFiles(t *testing.T, s spool.Store, fs ...*spool.File) {
	t.Helper()
	if err := s.CreateFiles(testCtx, fs); err != nil {
		t.Fatalf("CreateFiles: %v", err)
	}
}

// finish moves a pending task to a final status at the time at.
func finish(t *testing.T, s spool.Store, id string, to spool.Status, at time.Time) {
	t.Helper()
	if to == spool.StatusCompleted {
		if _, err := s.Apply(testCtx, &spool.Change{ID: id, To: spool.StatusProcessing, Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Apply(testCtx, &spool.Change{ID: id, To: to, Time: at}); err != nil {
		t.Fatal(err)
	}
}

// wantFiles checks which file records exist, and that deleted, the files a
// delete returned, are exactly the gone ones.
func wantFiles(t *testing.T, s spool.Store, deleted []*spool.File, kept, gone []*spool.File) {
	t.Helper()
	for _, f := range kept {
		if _, err := s.GetFile(testCtx, f.ID); err != nil {
			t.Errorf("file %s (of task %q) should be kept: %v", f.ID, f.TaskID, err)
		}
	}
	for _, f := range gone {
		if _, err := s.GetFile(testCtx, f.ID); !errors.Is(err, spool.ErrNotFound) {
			t.Errorf("file %s (of task %q) should be deleted: %v", f.ID, f.TaskID, err)
		}
	}
	var got, want []string
	for _, f := range deleted {
		got = append(got, f.ID+" "+f.Key)
	}
	for _, f := range gone {
		want = append(want, f.ID+" "+f.Key)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("deleted files (id, key) = %v, want %v", got, want)
	}
}

// DeleteTask deletes the files its task and the task's workflow steps
// produced, except those another task takes as input.
func testDeleteFiles(t *testing.T, s spool.Store) {
	producer := task("x")
	create(t, s, producer)
	step := task("x")
	step.ParentID = producer.ID
	create(t, s, step)
	own, stepOut, byFileID, byInput, upload := file(producer.ID), file(step.ID), file(producer.ID), file(producer.ID), file("")
	createFiles(t, s, own, stepOut, byFileID, byInput, upload)
	// A file_id task, and a task whose input names a file without file_id
	// (as a workflow step may take its predecessor's output).
	usesID := task("x")
	usesID.FileID, usesID.Input = byFileID.ID, &spool.File{ID: byFileID.ID, Object: "source"}
	usesInput := task("x")
	usesInput.Input = &spool.File{ID: byInput.ID, Object: "source"}
	usesUpload := task("x")
	usesUpload.FileID, usesUpload.Input = upload.ID, &spool.File{ID: upload.ID, Object: "source"}
	create(t, s, usesID, usesInput, usesUpload)
	finish(t, s, step.ID, spool.StatusCompleted, time.Now())
	finish(t, s, producer.ID, spool.StatusCompleted, time.Now())

	deleted, err := s.DeleteTask(testCtx, producer.ID)
	if err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	wantFiles(t, s, deleted, []*spool.File{byFileID, byInput, upload}, []*spool.File{own, stepOut})
	if _, err := s.GetTask(testCtx, step.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("workflow step of a deleted task: %v, want ErrNotFound", err)
	}
	for _, ev := range allEvents(t, s) {
		if ev.Task.ID == producer.ID || ev.Task.ID == step.ID {
			t.Errorf("event %s of deleted task %s still read", ev.Type, ev.Task.ID)
		}
	}

	// A url task's input is the file it fetched, its own: that use does
	// not keep it.
	fetcher := task("x")
	fetched := file(fetcher.ID)
	fetcher.URL = "https://example.com/a.mp4"
	fetcher.Input = &spool.File{ID: fetched.ID, Object: "source", URL: fetcher.URL}
	create(t, s, fetcher)
	createFiles(t, s, fetched)
	finish(t, s, fetcher.ID, spool.StatusFailed, time.Now())
	deleted, err = s.DeleteTask(testCtx, fetcher.ID)
	if err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	wantFiles(t, s, deleted, nil, []*spool.File{fetched})

	// A refused delete deletes no file.
	pending := task("x")
	create(t, s, pending)
	pendingOut := file(pending.ID)
	createFiles(t, s, pendingOut)
	if _, err := s.DeleteTask(testCtx, pending.ID); !errors.Is(err, spool.ErrInvalidTransition) {
		t.Fatalf("DeleteTask(pending) = %v, want ErrInvalidTransition", err)
	}
	wantFiles(t, s, nil, []*spool.File{pendingOut}, nil)
}

// DeleteFinished deletes the oldest finished top-level tasks of one status,
// in chunks, with their steps and their unused files, and nothing else.
func testDeleteFinished(t *testing.T, s spool.Store) {
	now := time.Now()
	cutoff := now.Add(-30 * time.Minute)
	// Task ids sort by creation, as the engine makes them.
	mk := func(parent string, created time.Time) *spool.Task {
		tk := task("x")
		tk.ID = "task_" + ulid.MustNew(ulid.Timestamp(created), rand.Reader).String()
		tk.Created, tk.Updated = created, created
		tk.ParentID = parent
		create(t, s, tk)
		return tk
	}
	old := []*spool.Task{mk("", now.Add(-9*time.Hour)), mk("", now.Add(-8*time.Hour)), mk("", now.Add(-7*time.Hour))}
	for i, tk := range old {
		finish(t, s, tk.ID, spool.StatusCompleted, now.Add(-time.Duration(3-i)*time.Hour))
	}
	oldStep := mk(old[2].ID, now.Add(-6*time.Hour))
	finish(t, s, oldStep.ID, spool.StatusCompleted, now.Add(-5*time.Hour))
	// Created long ago, finished just now: kept.
	recent := mk("", now.Add(-6*time.Hour))
	finish(t, s, recent.ID, spool.StatusCompleted, now)
	// A step finished long ago goes with its parent, not before.
	recentStep := mk(recent.ID, now.Add(-6*time.Hour))
	finish(t, s, recentStep.ID, spool.StatusCompleted, now.Add(-5*time.Hour))
	failed, cancelled, pending := mk("", now.Add(-2*time.Hour)), mk("", now.Add(-2*time.Hour)), mk("", now.Add(-2*time.Hour))
	finish(t, s, failed.ID, spool.StatusFailed, now.Add(-time.Hour))
	finish(t, s, cancelled.ID, spool.StatusCancelled, now.Add(-time.Hour))

	out0, used, stepOut, recentOut, failedOut := file(old[0].ID), file(old[1].ID), file(oldStep.ID), file(recent.ID), file(failed.ID)
	createFiles(t, s, out0, used, stepOut, recentOut, failedOut)
	user := task("x")
	user.FileID, user.Input = used.ID, &spool.File{ID: used.ID, Object: "source"}
	create(t, s, user)

	if _, _, err := s.DeleteFinished(testCtx, spool.StatusPending, cutoff, 10); err == nil {
		t.Errorf("DeleteFinished(pending) succeeded, want an error")
	}
	var deleted []*spool.File
	n, files, err := s.DeleteFinished(testCtx, spool.StatusCompleted, cutoff, 2)
	if err != nil || n != 2 {
		t.Fatalf("DeleteFinished(limit 2) = %d, %v; want 2", n, err)
	}
	deleted = append(deleted, files...)
	if _, err := s.GetTask(testCtx, old[2].ID); err != nil {
		t.Errorf("the newest of the old tasks went first (%v): want the oldest first", err)
	}
	n, files, err = s.DeleteFinished(testCtx, spool.StatusCompleted, cutoff, 2)
	if err != nil || n != 1 {
		t.Fatalf("DeleteFinished, second chunk = %d, %v; want 1", n, err)
	}
	deleted = append(deleted, files...)
	if n, _, err := s.DeleteFinished(testCtx, spool.StatusCompleted, cutoff, 2); err != nil || n != 0 {
		t.Errorf("DeleteFinished, nothing left = %d, %v; want 0", n, err)
	}
	wantFiles(t, s, deleted, []*spool.File{used, recentOut, failedOut}, []*spool.File{out0, stepOut})
	for _, tk := range append(old, oldStep) {
		if _, err := s.GetTask(testCtx, tk.ID); !errors.Is(err, spool.ErrNotFound) {
			t.Errorf("old completed task %s: %v, want ErrNotFound", tk.ID, err)
		}
	}
	for _, tk := range []*spool.Task{recent, recentStep, failed, cancelled, pending, user} {
		if _, err := s.GetTask(testCtx, tk.ID); err != nil {
			t.Errorf("task %s should be kept: %v", tk.ID, err)
		}
	}
	st, err := s.Stats(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ByStatus[spool.StatusCompleted] != 2 {
		t.Errorf("completed count after retention = %d, want 2", st.ByStatus[spool.StatusCompleted])
	}
	for _, ev := range allEvents(t, s) {
		if slices.Contains(ids(append(old, oldStep)), ev.Task.ID) {
			t.Errorf("event %s of deleted task %s still read", ev.Type, ev.Task.ID)
		}
	}

	n, files, err = s.DeleteFinished(testCtx, spool.StatusFailed, cutoff, 10)
	if err != nil || n != 1 {
		t.Fatalf("DeleteFinished(failed) = %d, %v; want 1", n, err)
	}
	wantFiles(t, s, files, nil, []*spool.File{failedOut})
	if _, err := s.GetTask(testCtx, cancelled.ID); err != nil {
		t.Errorf("cancelled task deleted with the failed ones: %v", err)
	}
}

// A finished workflow parent whose steps still run is neither deleted nor
// retained away: its steps would go with it.
func testDeleteKeepsRunningSteps(t *testing.T, s spool.Store) {
	old := time.Now().Add(-2 * time.Hour)
	parent := task("workflow")
	parent.ID = "task_" + ulid.MustNew(ulid.Timestamp(old), rand.Reader).String()
	parent.Created, parent.Updated = old, old
	step := task("x")
	step.ParentID = parent.ID
	create(t, s, parent, step)
	if _, err := s.Apply(testCtx, &spool.Change{ID: step.ID, To: spool.StatusProcessing}); err != nil {
		t.Fatal(err)
	}
	finish(t, s, parent.ID, spool.StatusCancelled, old.Add(time.Minute))
	if _, err := s.DeleteTask(testCtx, parent.ID); !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("DeleteTask of a parent with a running step = %v, want ErrInvalidTransition", err)
	}
	if n, _, err := s.DeleteFinished(testCtx, spool.StatusCancelled, time.Now(), 10); err != nil || n != 0 {
		t.Errorf("DeleteFinished took a parent with a running step: %d, %v", n, err)
	}
	get(t, s, parent.ID)
	get(t, s, step.ID)
	// Once the step ends, both go.
	finish(t, s, step.ID, spool.StatusFailed, time.Now())
	if _, err := s.DeleteTask(testCtx, parent.ID); err != nil {
		t.Fatalf("DeleteTask once the steps ended: %v", err)
	}
	if _, err := s.GetTask(testCtx, step.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("step after its parent was deleted: %v", err)
	}
}

// A task cannot be created on a file that is not stored (deleted since the
// caller looked it up): nothing of the batch is stored.
func testCreateMissingFile(t *testing.T, s spool.Store) {
	ok, bad := task("x"), task("x")
	bad.FileID = newID("file_")
	if _, err := s.CreateTasks(testCtx, []*spool.Task{ok, bad}); !errors.Is(err, spool.ErrNotFound) {
		t.Fatalf("CreateTasks with a missing file = %v, want ErrNotFound", err)
	}
	if _, err := s.GetTask(testCtx, ok.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("a task of the refused batch was stored: %v", err)
	}
	one := task("x")
	one.FileID = newID("file_")
	if _, err := s.CreateTasks(testCtx, []*spool.Task{one}); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("CreateTasks of one task with a missing file = %v, want ErrNotFound", err)
	}
}

// A file kept when its producer was deleted, because another task took it
// as input, goes when that task is deleted too.
func testDeleteFileOfGoneProducer(t *testing.T, s spool.Store) {
	producer := task("x")
	create(t, s, producer)
	out := file(producer.ID)
	createFiles(t, s, out)
	user := task("x")
	user.FileID = out.ID
	create(t, s, user)
	finish(t, s, producer.ID, spool.StatusCompleted, time.Now())
	finish(t, s, user.ID, spool.StatusCompleted, time.Now())
	files, err := s.DeleteTask(testCtx, producer.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles(t, s, files, []*spool.File{out}, nil)
	if files, err = s.DeleteTask(testCtx, user.ID); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, s, files, nil, []*spool.File{out})
}

// testDeleteFileInUse: a file that an unfinished task takes as input, by
// file_id, by an input naming it, or as the input a url task fetched (to
// be retried on it), is not deleted (ErrFileInUse); once the task has
// finished, it is.
func testDeleteFileInUse(t *testing.T, s spool.Store) {
	byFileID, byInput := file(""), file("")
	createFiles(t, s, byFileID, byInput)
	usesID := task("x")
	usesID.FileID, usesID.Input = byFileID.ID, &spool.File{ID: byFileID.ID, Object: "source"}
	usesInput := task("x")
	usesInput.Input = &spool.File{ID: byInput.ID, Object: "source"}
	usesURL := task("x")
	fetched := file(usesURL.ID)
	usesURL.URL = "https://example.com/in.bin"
	usesURL.Input = &spool.File{ID: fetched.ID, Object: "source", URL: usesURL.URL, Key: fetched.Key}
	create(t, s, usesID, usesInput, usesURL)
	createFiles(t, s, fetched)
	for _, f := range []*spool.File{byFileID, byInput, fetched} {
		if err := s.DeleteFile(testCtx, f.ID); !errors.Is(err, spool.ErrFileInUse) {
			t.Errorf("DeleteFile of a pending task's input: %v, want ErrFileInUse", err)
		}
		if _, err := s.GetFile(testCtx, f.ID); err != nil {
			t.Errorf("file %s after a refused delete: %v", f.ID, err)
		}
	}
	finish(t, s, usesID.ID, spool.StatusCompleted, time.Now())
	finish(t, s, usesInput.ID, spool.StatusCancelled, time.Now())
	finish(t, s, usesURL.ID, spool.StatusFailed, time.Now())
	for _, f := range []*spool.File{byFileID, byInput, fetched} {
		if err := s.DeleteFile(testCtx, f.ID); err != nil {
			t.Errorf("DeleteFile of a finished task's input: %v", err)
		}
	}
}
