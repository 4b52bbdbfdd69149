package spool_test

import (
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
