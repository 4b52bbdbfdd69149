package spooltest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

func testClaimOrder(t *testing.T, s spool.Store) {
	var all []*spool.Task
	base := time.Now().Add(-time.Hour)
	for i := range 6 {
		tk := task([]string{"a", "b", "c"}[i%3])
		tk.Created = base.Add(time.Duration(i) * time.Second)
		all = append(all, tk)
	}
	create(t, s, all...)
	got := claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"a", "b"}, Limit: 3})
	want := []string{all[0].ID, all[1].ID, all[3].ID} // oldest of a and b
	slices.Sort(want)
	gotIDs := ids(got)
	slices.Sort(gotIDs)
	if !slices.Equal(gotIDs, want) {
		t.Errorf("claimed %v, want the three oldest of kinds a, b: %v", gotIDs, want)
	}
	for _, c := range got {
		if c.Status != spool.StatusProcessing || c.Attempt != 1 {
			t.Errorf("claimed task %s is %s attempt %d, want processing attempt 1", c.ID, c.Status, c.Attempt)
		}
	}
	got = claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"c"}, Limit: 1}, spool.ClaimBatch{Kinds: []string{"a", "b"}, Limit: 5})
	if gotIDs := ids(got); len(got) != 2 || !slices.Contains(gotIDs, all[2].ID) || !slices.Contains(gotIDs, all[4].ID) {
		t.Errorf("second claim took %v, want the oldest c and the last b", gotIDs)
	}
	if got := claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"a", "b"}, Limit: 5}); len(got) != 0 {
		t.Errorf("claim of kinds with nothing left took %v", ids(got))
	}
}

func testClaimDue(t *testing.T, s spool.Store) {
	later := task("x")
	later.Status, later.RunAt = spool.StatusWaiting, time.Now().Add(time.Hour)
	now := task("x")
	create(t, s, later, now)
	got := claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"x"}, Limit: 10})
	if len(got) != 1 || got[0].ID != now.ID {
		t.Errorf("claimed %v, want only the task due now", ids(got))
	}
	next, err := s.NextDue(testCtx, []string{"x", "y"})
	if err != nil || next.Sub(later.RunAt).Abs() > time.Millisecond {
		t.Errorf("NextDue = %v, %v; want %v", next, err, later.RunAt)
	}
	// A retry waits, then is claimable once due.
	due := time.Now().Add(-time.Millisecond)
	if _, err := s.Apply(testCtx, &spool.Change{ID: now.ID, To: spool.StatusWaiting, Due: due, Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	if w := get(t, s, now.ID); w.Status != spool.StatusWaiting || w.Error != "boom" {
		t.Errorf("retrying task is %s %q", w.Status, w.Error)
	}
	got = claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"x"}, Limit: 10})
	if len(got) != 1 || got[0].ID != now.ID || got[0].Attempt != 2 {
		t.Errorf("claimed %v, want the due retry on attempt 2", ids(got))
	}
}

func testClaimConcurrent(t *testing.T, s spool.Store) {
	const n = 200
	var ts []*spool.Task
	for range n {
		ts = append(ts, task("x"))
	}
	create(t, s, ts...)
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			owner := fmt.Sprint("w", w)
			for {
				now := time.Now()
				got, err := s.ClaimTasks(testCtx, &spool.ClaimParams{Owner: owner, Now: now,
					Lease: time.Minute, Batches: []spool.ClaimBatch{{Kinds: []string{"x"}, Limit: 7}}})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, c := range got {
					if prev, dup := seen[c.ID]; dup {
						errs <- fmt.Errorf("task %s claimed by %s and %s", c.ID, prev, owner)
					}
					seen[c.ID] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != n {
		t.Errorf("%d tasks claimed, want %d", len(seen), n)
	}
}

func testCreateAndClaim(t *testing.T, s spool.Store) {
	now := time.Now()
	p := &spool.ClaimParams{Owner: "o", Now: now, Lease: time.Minute}
	tk := task("x")
	tk.IdempotencyKey = "once"
	got, err := s.CreateAndClaim(testCtx, tk, p)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tk.ID || got.Status != spool.StatusProcessing || got.Attempt != 1 {
		t.Errorf("CreateAndClaim = %s %s attempt %d, want the task processing on attempt 1", got.ID, got.Status, got.Attempt)
	}
	var types []spool.EventType
	for _, ev := range allEvents(t, s) {
		types = append(types, ev.Type)
	}
	if want := []spool.EventType{spool.EventCreated, spool.EventFor(spool.StatusProcessing)}; !slices.Equal(types, want) {
		t.Errorf("events %v, want %v", types, want)
	}
	// The owner holds it: its heartbeat renews it.
	if held, err := s.Heartbeat(testCtx, &spool.Instance{ID: "o", Host: "h", PID: 1, Started: now}, time.Minute, []string{tk.ID}); err != nil || len(held) != 1 {
		t.Errorf("Heartbeat of the owner = %v, %v", held, err)
	}
	// The same idempotency key returns the first task, unclaimed again.
	again := task("x")
	again.IdempotencyKey = "once"
	got, err = s.CreateAndClaim(testCtx, again, p)
	if err != nil || got.ID != tk.ID || got.Attempt != 1 {
		t.Errorf("second CreateAndClaim with the key = %v, %v; want the first task, attempt 1", got, err)
	}
	// A task waiting for its run_at is stored, not claimed.
	later := task("x")
	later.Status, later.RunAt = spool.StatusWaiting, now.Add(time.Hour)
	if got, err := s.CreateAndClaim(testCtx, later, p); err != nil || got.Status != spool.StatusWaiting {
		t.Errorf("CreateAndClaim of a waiting task = %v, %v", got, err)
	}
}

func testHeartbeatRecover(t *testing.T, s spool.Store) {
	a := &spool.Instance{ID: newID("inst_"), Host: "h", PID: 1, Started: time.Now()}
	b := &spool.Instance{ID: newID("inst_"), Host: "h", PID: 2, Started: time.Now()}
	for _, in := range []*spool.Instance{a, b} {
		if _, err := s.Heartbeat(testCtx, in, time.Minute, nil); err != nil {
			t.Fatal(err)
		}
	}
	t1, t2, t3 := task("x"), task("x"), task("x")
	t3.MaxAttempts = 1
	create(t, s, t1)
	claim(t, s, a.ID, spool.ClaimBatch{Kinds: []string{"x"}, Limit: 1})
	create(t, s, t2, t3)
	claim(t, s, b.ID, spool.ClaimBatch{Kinds: []string{"x"}, Limit: 2})
	// Only the listed tasks that a still holds are renewed and returned.
	held, err := s.Heartbeat(testCtx, a, time.Minute, []string{t1.ID, t2.ID, newID("task_")})
	if err != nil || !slices.Equal(held, []string{t1.ID}) {
		t.Errorf("Heartbeat(a) held %v, %v; want [%s]", held, err, t1.ID)
	}
	insts, err := s.Instances(testCtx)
	if err != nil || len(insts) != 2 {
		t.Fatalf("Instances = %d, %v; want 2", len(insts), err)
	}
	n, err := s.Recover(testCtx, []string{b.ID}, time.Now())
	if err != nil || n != 2 {
		t.Fatalf("Recover(b) = %d, %v; want 2", n, err)
	}
	if got := get(t, s, t1.ID); got.Status != spool.StatusProcessing {
		t.Errorf("a live instance's task is %s, want processing", got.Status)
	}
	if got := get(t, s, t2.ID); got.Status != spool.StatusPending || got.Attempt != 1 {
		t.Errorf("a dead instance's task is %s attempt %d, want pending with the attempt counted", got.Status, got.Attempt)
	}
	if got := get(t, s, t3.ID); got.Status != spool.StatusError || got.Error == "" {
		t.Errorf("a dead instance's task on its last attempt is %s %q, want error", got.Status, got.Error)
	}
	if insts, _ := s.Instances(testCtx); len(insts) != 1 || insts[0].ID != a.ID {
		t.Errorf("after Recover, instances = %v, want only a", insts)
	}
	// A task its owner no longer lists keeps its old lease.
	if held, err := s.Heartbeat(testCtx, a, -time.Second, nil); err != nil || len(held) != 0 {
		t.Fatalf("Heartbeat(a, none) = %v, %v", held, err)
	}
	if n, err := s.Recover(testCtx, nil, time.Now()); err != nil || n != 0 {
		t.Errorf("Recover before the lease ran out = %d, %v; want 0", n, err)
	}
	// An expired lease is recovered even if its owner is listed as alive.
	if _, err := s.Heartbeat(testCtx, a, -time.Second, []string{t1.ID}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Recover(testCtx, nil, time.Now()); err != nil || n != 1 {
		t.Errorf("Recover of an expired lease = %d, %v; want 1", n, err)
	}
	if err := s.RemoveInstance(testCtx, a.ID); err != nil {
		t.Fatal(err)
	}
}

// A claim over many kinds (more than SQLite merges in one compound query)
// takes the oldest due across them, and a kind named twice counts once.
func testClaimManyKinds(t *testing.T, s spool.Store) {
	var kinds []string
	var tasks []*spool.Task
	base := time.Now().Add(-time.Hour)
	for i := range 120 {
		kind := fmt.Sprintf("k%03d", i)
		kinds = append(kinds, kind)
		tk := task(kind)
		tk.Created = base.Add(time.Duration(120-i) * time.Second) // the last kinds are the oldest
		tasks = append(tasks, tk)
	}
	create(t, s, tasks...)
	got := claim(t, s, "o", spool.ClaimBatch{Kinds: kinds, Limit: 5})
	if len(got) != 5 {
		t.Fatalf("claimed %d of 120 kinds, want 5", len(got))
	}
	for _, tk := range got {
		if tk.Kind < "k115" {
			t.Errorf("claimed %s, want the five oldest (k115-k119)", tk.Kind)
		}
	}
	a1, a2 := task("dup"), task("dup")
	create(t, s, a1, a2)
	if got := claim(t, s, "o", spool.ClaimBatch{Kinds: []string{"dup", "dup"}, Limit: 2}); len(got) != 2 {
		t.Errorf("a kind named twice claimed %d of 2", len(got))
	}
}
