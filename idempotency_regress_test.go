package spool_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// A replay of a request with run_at at the Unix epoch, which the SQLite
// store keeps as no run_at, returns the first task (found in review: it
// was refused, run_at differing).
func TestIdempotencyReplayEpochRunAt(t *testing.T) {
	ctx := ctxT(t)
	e, _ := idemEngine(t, spool.Config{})
	for _, req := range []spool.Request{
		{Kind: "x", IdempotencyKey: "go", RunAt: time.Unix(0, 0)},
		jsonRequest(t, `{"kind": "x", "idempotency_key": "json", "run_at": "1970-01-01T00:00:00Z"}`),
	} {
		first, err := e.Create(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := e.Create(ctx, req); err != nil || again.ID != first.ID {
			t.Errorf("Create again = %v, %v; want the first task %s", again, err, first.ID)
		}
		if ts, err := e.CreateMany(ctx, []spool.Request{req}); err != nil || ts[0].ID != first.ID {
			t.Errorf("CreateMany again = %v, %v; want the first task %s", ts, err, first.ID)
		}
	}
}

// refusingKeys is a Store that refuses a used idempotency key itself, with
// an error of its own matching ErrIdempotencyMismatch, as Tx.CreateTasks
// allows.
type refusingKeys struct{ spool.Store }

func (s refusingKeys) CreateTasks(ctx context.Context, tasks []*spool.Task) ([]*spool.Task, error) {
	for _, t := range tasks {
		if t.IdempotencyKey == "used" {
			return nil, fmt.Errorf("mystore: key %s: %w", t.IdempotencyKey, spool.ErrIdempotencyMismatch)
		}
	}
	return s.Store.CreateTasks(ctx, tasks)
}

// A Store's own ErrIdempotencyMismatch reaches the caller of Create and
// CreateMany as the *ValidationError they promise, so that the API answers
// 422 idempotency_mismatch, not 500 (found in review: it came as a plain
// error).
func TestIdempotencyMismatchFromStore(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{Store: refusingKeys{openStore(t)}})
	e.Register("x", spool.HandlerFunc(nil))
	req := spool.Request{Kind: "x", IdempotencyKey: "used"}
	_, err := e.Create(ctx, req)
	var ve *spool.ValidationError
	if !errors.Is(err, spool.ErrIdempotencyMismatch) || !errors.Is(err, spool.ErrInvalidRequest) || !errors.As(err, &ve) ||
		ve.Field != "idempotency_key" {
		t.Errorf("Create = %v; want a ValidationError on idempotency_key matching ErrIdempotencyMismatch", err)
	}
	_, err = e.CreateMany(ctx, []spool.Request{{Kind: "x"}, req})
	if !errors.Is(err, spool.ErrIdempotencyMismatch) || !errors.Is(err, spool.ErrInvalidRequest) || !errors.As(err, &ve) ||
		ve.Field != "requests[1].idempotency_key" {
		t.Errorf("CreateMany = %v; want a ValidationError on requests[1].idempotency_key matching ErrIdempotencyMismatch", err)
	}
}
