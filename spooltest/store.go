package spooltest

import (
	"context"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spoolrun/spool"
)

// TestStore runs the conformance suite against stores made by newStore,
// each subtest on a fresh, empty store. Every Store implementation must pass
// it; the engine relies on nothing else.
func TestStore(t *testing.T, newStore func(t *testing.T) spool.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s spool.Store)
	}{
		{"CreateGet", testCreateGet},
		{"GetMissing", testGetMissing},
		{"Idempotency", testIdempotency},
		{"CreateAllOrNothing", testCreateAllOrNothing},
		{"CreateBatches", testCreateBatches},
		{"CreateEveryField", testCreateEveryField},
		{"Transitions", testTransitions},
		{"Owner", testOwner},
		{"Progress", testProgress},
		{"ClaimOrderAndLimits", testClaimOrder},
		{"ClaimDue", testClaimDue},
		{"ClaimManyKinds", testClaimManyKinds},
		{"ClaimConcurrent", testClaimConcurrent},
		{"CreateAndClaim", testCreateAndClaim},
		{"Events", testEvents},
		{"HookAtomic", testHookAtomic},
		{"HookSiblings", testHookSiblings},
		{"HeartbeatRecover", testHeartbeatRecover},
		{"List", testList},
		{"Delete", testDelete},
		{"EventsPastDeleted", testEventsPastDeleted},
		{"Stats", testStats},
		{"PruneAndCursor", testPruneAndCursor},
		{"DeleteFiles", testDeleteFiles},
		{"DeleteFinished", testDeleteFinished},
		{"DeleteKeepsRunningSteps", testDeleteKeepsRunningSteps},
		{"CreateMissingFile", testCreateMissingFile},
		{"DeleteFileOfGoneProducer", testDeleteFileOfGoneProducer},
		{"DeleteFileInUse", testDeleteFileInUse},
		{"StepsAndResults", testStepsAndResults},
		{"HookNoResult", testHookNoResult},
		{"DeliveriesDispatch", testDeliveriesDispatch},
		{"DeliveriesClaim", testDeliveriesClaim},
		{"DeliveriesDisableAndPrune", testDeliveriesDisableAndPrune},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

var testCtx = context.Background()

func newID(prefix string) string { return prefix + ulid.Make().String() }

func task(kind string) *spool.Task {
	now := time.Now().UTC()
	return &spool.Task{ID: newID("task_"), Kind: kind, Status: spool.StatusPending,
		Options: map[string]any{"n": float64(1)}, Created: now, Updated: now, MaxAttempts: 3}
}

func create(t *testing.T, s spool.Store, ts ...*spool.Task) []*spool.Task {
	t.Helper()
	out, err := s.CreateTasks(testCtx, ts)
	if err != nil {
		t.Fatalf("CreateTasks: %v", err)
	}
	return out
}

func get(t *testing.T, s spool.Store, id string) *spool.Task {
	t.Helper()
	got, err := s.GetTask(testCtx, id)
	if err != nil {
		t.Fatalf("GetTask(%s): %v", id, err)
	}
	return got
}

func claim(t *testing.T, s spool.Store, owner string, batches ...spool.ClaimBatch) []*spool.Task {
	t.Helper()
	now := time.Now()
	got, err := s.ClaimTasks(testCtx, &spool.ClaimParams{Owner: owner, Now: now,
		Lease: time.Minute, Batches: batches})
	if err != nil {
		t.Fatalf("ClaimTasks: %v", err)
	}
	return got
}

func ids(ts []*spool.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func allEvents(t *testing.T, s spool.Store) []*spool.Event {
	t.Helper()
	var out []*spool.Event
	after := ""
	for {
		evs, err := s.Events(testCtx, after, 100)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		out = append(out, evs...)
		if len(evs) < 100 {
			return out
		}
		after = evs[len(evs)-1].ID
	}
}
