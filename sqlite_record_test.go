package spool

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// Delivered attempts queued together are recorded together (one UPDATE
// for their states, one INSERT for their attempts, one UPDATE for the next
// deliveries) with the answers RecordDelivery alone gives: each its
// attempt, its task's next delivery leased to the owner with the task
// read, and a record whose delivery the owner does not hold refused.
// dispatchedDeliveries stores n tasks (task_0, task_1, …) with two events
// each (created, cancelled) and makes their deliveries: each task's first
// due, its second waiting behind it.
func dispatchedDeliveries(t *testing.T, n int) *sqliteStore {
	t.Helper()
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := st.(*sqliteStore)
	if err := s.SetCursor(ctx, webhookCursor, eventID(0, time.Unix(0, 0))); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range n {
		task := &Task{ID: fmt.Sprintf("task_%d", i), Kind: "k", Status: StatusPending, Created: now, Updated: now,
			MaxAttempts: 1, WebhookURL: "http://receiver.test/" + fmt.Sprint(i), Options: map[string]any{"i": i}}
		if _, err := s.CreateTasks(ctx, []*Task{task}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, &Change{ID: task.ID, To: StatusCancelled, NoResult: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, made, err := s.DispatchDeliveries(ctx, &DispatchParams{Cursor: webhookCursor, Now: now}); err != nil || made != 2*n {
		t.Fatalf("dispatch: %d made, %v", made, err)
	}
	return s
}

// claimedDeliveries is dispatchedDeliveries with each task's first
// delivery claimed for "me".
func claimedDeliveries(t *testing.T, n int) (*sqliteStore, []*Delivery) {
	t.Helper()
	s := dispatchedDeliveries(t, n)
	claimed, err := s.ClaimDeliveries(context.Background(), "me", time.Now(), time.Minute, 2*n)
	if err != nil || len(claimed) != n {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	return s, claimed
}

// Records without a lease (a sender shutting down) recorded together hand
// nothing on: each task's next delivery is due at once, held by no one,
// so that another sender claims it.
func TestMergedDeliveryRecordsWithoutLease(t *testing.T) {
	ctx := context.Background()
	const n = 3
	s, claimed := claimedDeliveries(t, n)
	release := busy(t, s.w)
	errs := make(chan error, n)
	for i, d := range claimed {
		rec := &DeliveryRecord{ID: d.ID, Owner: "me", State: DeliveryDelivered,
			Attempt: &DeliveryAttempt{Time: time.Now(), StatusCode: 200}}
		go func() {
			next, err := s.RecordDelivery(ctx, rec)
			if err == nil && next != nil {
				err = fmt.Errorf("handed on %s without a lease", next.ID)
			}
			errs <- err
		}()
		until(t, s.w, func() bool { return len(s.w.queue) == i+1 })
	}
	release()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ClaimDeliveries(ctx, "other", time.Now(), time.Minute, 2*n)
	if err != nil || len(got) != n {
		t.Fatalf("another sender claimed %d of the next deliveries (%v), want %d", len(got), err, n)
	}
	for _, d := range got {
		if d.Type != EventFor(StatusCancelled) || d.Task == nil {
			t.Errorf("claimed %s %s, want a task's cancelled delivery with its task", d.ID, d.Type)
		}
	}
}

func TestMergedDeliveryRecords(t *testing.T) {
	ctx := context.Background()
	const n = 4
	s, claimed := claimedDeliveries(t, n)
	now := time.Now().UTC()

	release := busy(t, s.w)
	type answer struct {
		i    int
		next *Delivery
		err  error
	}
	answers := make(chan answer, n)
	for i, d := range claimed {
		id := d.ID
		if i == 2 {
			// The owner does not hold the task's waiting delivery: refused,
			// and the others go on.
			id = eventID(int64(2*i+2), d.EventTime)
		}
		rec := &DeliveryRecord{ID: id, Owner: "me", State: DeliveryDelivered, Lease: time.Minute,
			Attempt: &DeliveryAttempt{Time: now, StatusCode: 200 + i, Latency: time.Duration(i) * time.Millisecond}}
		go func() {
			next, err := s.RecordDelivery(ctx, rec)
			answers <- answer{i, next, err}
		}()
		until(t, s.w, func() bool { return len(s.w.queue) == i+1 })
	}
	release()
	for range n {
		a := <-answers
		d := claimed[a.i]
		if a.i == 2 {
			if !errors.Is(a.err, ErrInvalidTransition) || a.next != nil {
				t.Errorf("record of a delivery not held: %v, %v; want ErrInvalidTransition", a.next, a.err)
			}
			continue
		}
		if a.err != nil {
			t.Fatalf("record %d: %v", a.i, a.err)
		}
		next := a.next
		if next == nil || next.TaskID != d.TaskID || next.Type != EventFor(StatusCancelled) ||
			next.Task == nil || next.Task.Status != StatusCancelled || fmt.Sprint(next.Task.Options["i"]) != fmt.Sprint(a.i) {
			t.Errorf("record %d handed on %+v, want its task's cancelled delivery with the task", a.i, next)
		}
	}

	var updated time.Time
	for i, d := range claimed {
		ds, err := s.Deliveries(ctx, d.TaskID)
		if err != nil || len(ds) != 2 {
			t.Fatalf("deliveries of %s: %d, %v", d.TaskID, len(ds), err)
		}
		first, second := ds[0], ds[1]
		if i == 2 {
			if first.State != DeliveryPending || len(first.Attempts) != 0 || !second.Next.IsZero() {
				t.Errorf("the refused record changed its delivery: %s, %d attempts; next due %v",
					first.State, len(first.Attempts), second.Next)
			}
			continue
		}
		if first.State != DeliveryDelivered || first.Attempted != 1 || len(first.Attempts) != 1 ||
			first.Attempts[0].StatusCode != 200+i || first.Attempts[0].Latency != time.Duration(i)*time.Millisecond {
			t.Errorf("delivery %d recorded as %s, %d attempts %+v", i, first.State, first.Attempted, first.Attempts)
		}
		if second.State != DeliveryPending || second.Next.IsZero() {
			t.Errorf("the next delivery of %s is %s, due %v; want leased", d.TaskID, second.State, second.Next)
		}
		// One statement recorded them all, at one time.
		if updated.IsZero() {
			updated = first.Updated
		} else if !first.Updated.Equal(updated) {
			t.Errorf("delivery %d recorded at %v, another at %v: not recorded together", i, first.Updated, updated)
		}
	}
}

// A claim, or a record handing on a task's next delivery, whose caller's
// context ends once it has committed still answers with the deliveries it
// leased, each with its task: they are the caller's to send or let go, and
// an error instead would leave them held by no one until their lease ends
// (found in review: the tasks, read after the commit, were read with the
// ended context).
func TestClaimDeliveriesAnswersOnceCommitted(t *testing.T) {
	ctx := context.Background()
	s := dispatchedDeliveries(t, 1)
	now := time.Now().UTC()

	// The writer tells its observer of each commit: it ends the caller's
	// context, as an engine's Close may meanwhile.
	endsOnCommit := func() context.Context {
		cctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		s.w.observe.Store(&commitObserver{report: func(int, time.Duration) { cancel() }, want: func() bool { return true }})
		return cctx
	}
	cctx := endsOnCommit()
	claimed, err := s.ClaimDeliveries(cctx, "me", time.Now(), time.Minute, 10)
	if cctx.Err() == nil {
		t.Fatal("the claim's commit was not observed")
	}
	if err != nil || len(claimed) != 1 || claimed[0].Task == nil || claimed[0].Task.ID != "task_0" {
		t.Fatalf("claim committed, then the context ended: %d deliveries, %v; want the one leased, with its task", len(claimed), err)
	}
	cctx = endsOnCommit()
	next, err := s.RecordDelivery(cctx, &DeliveryRecord{ID: claimed[0].ID, Owner: "me", State: DeliveryDelivered,
		Lease: time.Minute, Attempt: &DeliveryAttempt{Time: now, StatusCode: 200}})
	s.w.observe.Store(nil)
	if cctx.Err() == nil {
		t.Fatal("the record's commit was not observed")
	}
	if err != nil || next == nil || next.Task == nil || next.Type != EventFor(StatusCancelled) {
		t.Fatalf("record committed, then the context ended: next %+v, %v; want the task's next delivery, with its task", next, err)
	}
}
