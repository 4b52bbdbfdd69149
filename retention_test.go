package spool_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/spooltest"
)

// outputHandlers make tasks that produce files: "make" writes a.txt and
// b.txt and completes, "fail" fails for good, "use" takes a file input.
func outputHandlers() map[string]spool.Handler {
	return map[string]spool.Handler{
		"make": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
			for _, name := range []string{"a.txt", "b.txt"} {
				if _, err := job.CreateFile(ctx, strings.NewReader(name), &spool.File{Filename: name}); err != nil {
					return err
				}
			}
			return nil
		}),
		"fail": spool.HandlerFunc(func(context.Context, *spool.Job) error {
			return spool.Permanent(errors.New("no"))
		}),
		"use": spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }),
	}
}

// outputs returns a task's output files by name.
func outputs(t *testing.T, e *spool.Engine, id string) map[string]*spool.File {
	t.Helper()
	fs, err := e.ListFiles(context.Background(), &spool.FileListParams{TaskID: id})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*spool.File{}
	for _, f := range fs {
		out[f.Filename] = f
	}
	if len(out) != 2 {
		t.Fatalf("task %s has files %v, want a.txt and b.txt", id, out)
	}
	return out
}

// checkFile says whether a file's record and bytes are there, as want.
func checkFile(t *testing.T, e *spool.Engine, f *spool.File, want bool) {
	t.Helper()
	ctx := context.Background()
	_, recErr := e.GetFile(ctx, f.ID)
	r, bytesErr := storageOf(t, e).Open(ctx, f.Key)
	if bytesErr == nil {
		io.Copy(io.Discard, r)
		r.Close()
	}
	if want && (recErr != nil || bytesErr != nil) {
		t.Errorf("file %s: record %v, bytes %v; want both kept", f.Filename, recErr, bytesErr)
	}
	if !want && (!errors.Is(recErr, spool.ErrNotFound) || bytesErr == nil) {
		t.Errorf("file %s: record %v, bytes %v; want both deleted", f.Filename, recErr, bytesErr)
	}
}

// Delete deletes a task's output files, records and bytes, except one
// that another (unfinished) task takes as file_id input.
func TestDeleteDeletesOutputFiles(t *testing.T) {
	ctx := ctxT(t)
	e := spooltest.New(t, nil, outputHandlers())
	made := spooltest.CreateAndWait(t, e, spool.Request{Kind: "make"})
	if made.Status != spool.StatusCompleted {
		t.Fatalf("make: %s %s", made.Status, made.Error)
	}
	files := outputs(t, e, made.ID)
	user, err := e.Create(ctx, spool.Request{Kind: "use", FileID: files["b.txt"].ID, RunAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(ctx, made.ID); err != nil {
		t.Fatal(err)
	}
	checkFile(t, e, files["a.txt"], false)
	checkFile(t, e, files["b.txt"], true)
	if _, err := e.Get(ctx, user.ID); err != nil {
		t.Errorf("the file's user: %v", err)
	}
}

// Retention deletes the finished tasks of the statuses it names once older
// than their age, with their unused output files, and nothing else.
func TestRetention(t *testing.T) {
	ctx := ctxT(t)
	// The tasks are made by an engine without Retention, and the test reads
	// what it needs, before an engine with it opens the same database: with
	// Retention in force from the start, a completed task could go before
	// the test has read it.
	path := filepath.Join(t.TempDir(), "spool.db")
	e := openFile(t, spool.Config{Path: path})
	for kind, h := range outputHandlers() {
		e.Register(kind, h)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := spooltest.CreateAndWait(t, e, spool.Request{Kind: "make"})
	shared := spooltest.CreateAndWait(t, e, spool.Request{Kind: "make"})
	failed := spooltest.CreateAndWait(t, e, spool.Request{Kind: "fail"})
	if done.Status != spool.StatusCompleted || shared.Status != spool.StatusCompleted || failed.Status != spool.StatusFailed {
		t.Fatalf("tasks ended %s, %s, %s", done.Status, shared.Status, failed.Status)
	}
	doneFiles, sharedFiles := outputs(t, e, done.ID), outputs(t, e, shared.ID)
	user, err := e.Create(ctx, spool.Request{Kind: "use", FileID: sharedFiles["a.txt"].ID, RunAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := e.Create(ctx, spool.Request{Kind: "use", RunAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cancel(ctx, cancelled.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e = openFile(t, spool.Config{Path: path, Retention: map[spool.Status]time.Duration{
		spool.StatusCompleted: time.Millisecond,
		spool.StatusCancelled: time.Hour,
	}})
	for kind, h := range outputHandlers() {
		e.Register(kind, h)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The bytes go after the commit that deletes the records: wait for both.
	gone := func() bool {
		for _, id := range []string{done.ID, shared.ID} {
			if _, err := e.Get(ctx, id); !errors.Is(err, spool.ErrNotFound) {
				return false
			}
		}
		for _, f := range []*spool.File{doneFiles["a.txt"], doneFiles["b.txt"], sharedFiles["b.txt"]} {
			if r, err := storageOf(t, e).Open(ctx, f.Key); err == nil {
				r.Close()
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); !gone(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("completed tasks or their files still there after 30s")
		}
	}
	checkFile(t, e, doneFiles["a.txt"], false)
	checkFile(t, e, doneFiles["b.txt"], false)
	checkFile(t, e, sharedFiles["a.txt"], true)
	checkFile(t, e, sharedFiles["b.txt"], false)
	for _, id := range []string{failed.ID, cancelled.ID, user.ID} {
		if _, err := e.Get(ctx, id); err != nil {
			t.Errorf("task %s should be kept: %v", id, err)
		}
	}
	evs, err := e.Events(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Task.ID == done.ID || ev.Task.ID == shared.ID {
			t.Errorf("event %s of a deleted task still delivered", ev.Type)
		}
	}
}

func TestOpenRefusesBadRetention(t *testing.T) {
	for _, r := range []map[spool.Status]time.Duration{
		{spool.StatusPending: time.Hour},
		{spool.StatusProcessing: time.Hour},
		{spool.StatusWaiting: time.Hour},
		{spool.StatusReady: time.Hour},
		{"done": time.Hour},
		{spool.StatusCompleted: -time.Second},
	} {
		e, err := spool.Open(context.Background(), spool.Config{Path: ":memory:", Retention: r})
		var ve *spool.ValidationError
		if !errors.As(err, &ve) || ve.Field != "Config.Retention" {
			t.Errorf("Open with Retention %v = %v, want a ValidationError naming Config.Retention", r, err)
		}
		if e != nil {
			e.Close(context.Background())
		}
	}
	e, err := spool.Open(context.Background(), spool.Config{Path: ":memory:", Retention: map[spool.Status]time.Duration{
		spool.StatusCompleted: time.Hour, spool.StatusFailed: 0, spool.StatusError: time.Hour, spool.StatusCancelled: time.Minute}})
	if err != nil {
		t.Fatalf("Open with every final status: %v", err)
	}
	e.Close(context.Background())
}
