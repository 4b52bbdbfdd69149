package spool_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/spooltest"
)

// A url task that fetched its input and waits to be retried runs again on
// the fetched file, which therefore cannot be deleted meanwhile (found in
// review: the check left out tasks with a url, so the delete went through
// and the retry failed on the missing bytes).
func TestDeleteFileFetchedByRetryingTask(t *testing.T) {
	ctx := ctxT(t)
	img := pngBytes(t, 8, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(img) }))
	t.Cleanup(srv.Close)
	e := spooltest.New(t, &spool.Config{AllowPrivateNetworks: true, MaxAttempts: 3}, map[string]spool.Handler{
		"later": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
			if _, err := job.InputPath(ctx); err != nil {
				return err
			}
			return spool.RetryAfter(errors.New("not now"), time.Hour)
		}),
	})
	task, err := e.Create(ctx, spool.Request{Kind: "later", URL: srv.URL + "/in.png"})
	if err != nil {
		t.Fatal(err)
	}
	var in *spool.File
	waitFor(t, func() bool {
		got, err := e.Get(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == spool.StatusWaiting && got.Input != nil && got.Input.ID != "" {
			in = got.Input
		}
		return in != nil
	})
	if err := e.DeleteFile(ctx, in.ID); !errors.Is(err, spool.ErrFileInUse) {
		t.Fatalf("DeleteFile of a retrying url task's fetched input = %v, want ErrFileInUse", err)
	}
	if _, err := e.Cancel(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteFile(ctx, in.ID); err != nil {
		t.Fatalf("DeleteFile once the task is cancelled: %v", err)
	}
}
