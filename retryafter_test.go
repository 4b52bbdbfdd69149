package spool_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/spooltest"
)

// TestRetryAfterDelaysRetry: a handler error wrapped by RetryAfter makes
// the next attempt wait at least that long, although Backoff says 1 ms;
// wrapped again (with %w, or in a join), it still does.
func TestRetryAfterDelaysRetry(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"plain", spool.RetryAfter(errors.New("busy"), time.Hour)},
		{"wrapped", fmt.Errorf("transcribe: %w", spool.RetryAfter(errors.New("busy"), time.Hour))},
		{"joined", errors.Join(errors.New("other"), spool.RetryAfter(errors.New("busy"), time.Hour))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			e := spooltest.New(t, nil, map[string]spool.Handler{"x": spool.HandlerFunc(func(context.Context, *spool.Job) error {
				return tc.err
			})})
			task, err := e.Create(ctx, spool.Request{Kind: "x"})
			if err != nil {
				t.Fatal(err)
			}
			var got *spool.Task
			deadline := time.Now().Add(30 * time.Second)
			for {
				got, err = e.Get(ctx, task.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Attempt >= 1 && got.Status == spool.StatusWaiting || got.Status.Terminal() || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got.Status != spool.StatusWaiting || got.Attempt != 1 {
				t.Fatalf("task is %s after %d attempts (error %q), want waiting after 1", got.Status, got.Attempt, got.Error)
			}
			// Backoff would have retried after 1 ms, and polling is every
			// 20 ms: a second attempt would have come by now.
			time.Sleep(500 * time.Millisecond)
			if got, _ = e.Get(ctx, task.ID); got.Status != spool.StatusWaiting || got.Attempt != 1 {
				t.Errorf("task is %s after %d attempts, want still waiting after 1 (Retry-After of an hour)", got.Status, got.Attempt)
			}
		})
	}
}

func TestRetryAfterNil(t *testing.T) {
	if spool.RetryAfter(nil, time.Second) != nil {
		t.Error("RetryAfter(nil) is not nil")
	}
	err := errors.New("x")
	if spool.RetryAfter(err, 0) != err {
		t.Error("RetryAfter(err, 0) changed err")
	}
	if spool.IsPermanent(spool.RetryAfter(err, time.Second)) {
		t.Error("RetryAfter made err permanent")
	}
}
