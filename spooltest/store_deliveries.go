package spooltest

import (
	"errors"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// deliveriesFor makes a task run to completion and returns a pending
// delivery to url for each of its events, due at now.
func deliveriesFor(t *testing.T, s spool.Store, url string) (*spool.Task, []*spool.Delivery) {
	t.Helper()
	tk := task("x")
	create(t, s, tk)
	if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusProcessing}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusCompleted}); err != nil {
		t.Fatal(err)
	}
	var ds []*spool.Delivery
	now := time.Now()
	for _, ev := range allEvents(t, s) {
		if ev.Task.ID == tk.ID {
			ds = append(ds, &spool.Delivery{ID: ev.ID, TaskID: tk.ID, Type: ev.Type, EventTime: ev.Time,
				URL: url, Data: []byte(`{"id":"` + tk.ID + `"}`), State: spool.DeliveryPending, Next: now})
		}
	}
	if len(ds) != 3 {
		t.Fatalf("task has %d events, want 3", len(ds))
	}
	return tk, ds
}

func addDeliveries(t *testing.T, s spool.Store, ds []*spool.Delivery) {
	t.Helper()
	if err := s.AddDeliveries(testCtx, ds, "webhooks", ds[len(ds)-1].ID); err != nil {
		t.Fatalf("AddDeliveries: %v", err)
	}
}

func deliveries(t *testing.T, s spool.Store, taskID string) []*spool.Delivery {
	t.Helper()
	ds, err := s.Deliveries(testCtx, taskID)
	if err != nil {
		t.Fatalf("Deliveries: %v", err)
	}
	return ds
}

func claimDeliveries(t *testing.T, s spool.Store, owner string, now time.Time, lease time.Duration) []*spool.Delivery {
	t.Helper()
	ds, err := s.ClaimDeliveries(testCtx, owner, now, lease, 10)
	if err != nil {
		t.Fatalf("ClaimDeliveries: %v", err)
	}
	return ds
}

// AddDeliveries stores each delivery once, moves the cursor with them, and
// makes only a task's first pending delivery due.
func testDeliveriesAdd(t *testing.T, s spool.Store) {
	tk, ds := deliveriesFor(t, s, "https://example.com/hook")
	addDeliveries(t, s, ds)
	addDeliveries(t, s, ds[:1]) // again: ignored, the cursor stays
	// The cursor names the last delivery's event: nothing follows it.
	if c, err := s.Cursor(testCtx, "webhooks"); err != nil || c == "" {
		t.Errorf("cursor = %q, %v", c, err)
	} else if evs, err := s.Events(testCtx, c, 10); err != nil || len(evs) != 0 {
		t.Errorf("events after the cursor = %d, %v; want none", len(evs), err)
	}
	got := deliveries(t, s, tk.ID)
	if len(got) != 3 {
		t.Fatalf("Deliveries = %d, want 3", len(got))
	}
	for i, d := range got {
		if d.ID != ds[i].ID || d.Type != ds[i].Type || d.URL != ds[i].URL || string(d.Data) != string(ds[i].Data) ||
			d.State != spool.DeliveryPending || d.Attempted != 0 || !d.EventTime.Equal(ds[i].EventTime) {
			t.Errorf("delivery %d = %+v, want %+v", i, d, ds[i])
		}
		if due := !d.Next.IsZero(); due != (i == 0) {
			t.Errorf("delivery %d due = %v: only a task's first pending delivery is due", i, due)
		}
	}
	if next, err := s.NextDelivery(testCtx); err != nil || next.IsZero() || next.After(time.Now()) {
		t.Errorf("NextDelivery = %v, %v; want the first delivery's due time", next, err)
	}
	if got := deliveries(t, s, "task_none"); len(got) != 0 {
		t.Errorf("Deliveries of an unknown task = %v", got)
	}
}

// A claim takes only due deliveries, one per task at a time; a lease keeps
// others off until it ends; an attempt is recorded only by the owner, and
// a delivery that ends lets its task's next one go.
func testDeliveriesClaim(t *testing.T, s spool.Store) {
	tk, ds := deliveriesFor(t, s, "https://example.com/hook")
	addDeliveries(t, s, ds)
	now := time.Now()
	got := claimDeliveries(t, s, "a", now, time.Minute)
	if len(got) != 1 || got[0].ID != ds[0].ID || got[0].TaskID != tk.ID {
		t.Fatalf("claim = %v, want only the first delivery", got)
	}
	if more := claimDeliveries(t, s, "b", now, time.Minute); len(more) != 0 {
		t.Fatalf("a leased delivery, or a later one of its task, was claimed: %v", more)
	}
	retry := now.Add(time.Hour)
	err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[0].ID, Owner: "b", State: spool.DeliveryDelivered,
		Attempt: &spool.DeliveryAttempt{Time: now, StatusCode: 200}})
	if !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("RecordDelivery by another owner = %v, want ErrInvalidTransition", err)
	}
	if err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[0].ID, Owner: "a", State: spool.DeliveryPending,
		Next: retry, Attempt: &spool.DeliveryAttempt{Time: now, StatusCode: 500, Latency: time.Millisecond, Error: "HTTP 500"}}); err != nil {
		t.Fatal(err)
	}
	if next, err := s.NextDelivery(testCtx); err != nil || !next.Equal(retry.UTC().Truncate(0)) && next.Sub(retry).Abs() > time.Millisecond {
		t.Errorf("NextDelivery = %v, %v; want %v", next, err, retry)
	}
	if more := claimDeliveries(t, s, "a", now, time.Minute); len(more) != 0 {
		t.Fatalf("a delivery was claimed before its retry was due: %v", more)
	}
	// Due again; claimed with a lease that ends at once, then taken by b.
	if got := claimDeliveries(t, s, "a", retry, time.Nanosecond); len(got) != 1 || got[0].Attempted != 1 {
		t.Fatalf("claim at the retry = %v, want the delivery with 1 attempt", got)
	}
	if got := claimDeliveries(t, s, "b", retry, time.Minute); len(got) != 1 {
		t.Fatalf("claim after a lease ended = %v, want the delivery", got)
	}
	if err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[0].ID, Owner: "a", State: spool.DeliveryDelivered,
		Attempt: &spool.DeliveryAttempt{Time: now, StatusCode: 200}}); !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("RecordDelivery after the lease was taken = %v, want ErrInvalidTransition", err)
	}
	if err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[0].ID, Owner: "b", State: spool.DeliveryDelivered,
		Attempt: &spool.DeliveryAttempt{Time: now, StatusCode: 204, Latency: 2 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	all := deliveries(t, s, tk.ID)
	if d := all[0]; d.State != spool.DeliveryDelivered || d.Attempted != 2 || len(d.Attempts) != 2 ||
		d.Attempts[0].StatusCode != 500 || d.Attempts[0].Error != "HTTP 500" || d.Attempts[0].Latency != time.Millisecond ||
		!d.Attempts[0].Time.Equal(now) || d.Attempts[1].StatusCode != 204 || !d.Next.IsZero() {
		t.Errorf("after two attempts: %+v", d)
	}
	// The task's next delivery is due now.
	got = claimDeliveries(t, s, "a", time.Now(), time.Minute)
	if len(got) != 1 || got[0].ID != ds[1].ID {
		t.Fatalf("claim after the first ended = %v, want the second", got)
	}
	// Let go without an attempt (a sender shutting down): due again, no
	// attempt counted.
	if err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[1].ID, Owner: "a", State: spool.DeliveryPending,
		Next: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got = claimDeliveries(t, s, "a", time.Now(), time.Minute)
	if len(got) != 1 || got[0].ID != ds[1].ID || got[0].Attempted != 0 {
		t.Fatalf("claim after letting go = %v", got)
	}
}

// Disabling an endpoint disables its waiting deliveries and new ones until
// it is enabled; pruning deletes ended deliveries, not pending ones.
func testDeliveriesDisableAndPrune(t *testing.T, s spool.Store) {
	const url = "https://example.com/gone"
	tk, ds := deliveriesFor(t, s, url)
	addDeliveries(t, s, ds)
	other, ods := deliveriesFor(t, s, url)
	addDeliveries(t, s, ods)
	kept, kds := deliveriesFor(t, s, "https://example.com/kept")
	addDeliveries(t, s, kds)
	got := claimDeliveries(t, s, "a", time.Now(), time.Minute)
	if len(got) != 3 {
		t.Fatalf("claimed %d, want each task's first", len(got))
	}
	if err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[0].ID, Owner: "a", State: spool.DeliveryDisabled,
		Disable: "410", Attempt: &spool.DeliveryAttempt{Time: time.Now(), StatusCode: 410}}); err != nil {
		t.Fatal(err)
	}
	eps, err := s.WebhookEndpoints(testCtx)
	if err != nil || len(eps) != 1 || eps[0].URL != url || eps[0].Reason != "410" || eps[0].Disabled.IsZero() {
		t.Fatalf("WebhookEndpoints = %v, %v", eps, err)
	}
	for _, d := range deliveries(t, s, tk.ID) {
		if d.State != spool.DeliveryDisabled {
			t.Errorf("delivery of the disabled endpoint is %s", d.State)
		}
	}
	// The other task's first is held by a live lease: it records its own
	// attempt; its queued ones are disabled.
	od := deliveries(t, s, other.ID)
	if od[0].State != spool.DeliveryPending || od[1].State != spool.DeliveryDisabled || od[2].State != spool.DeliveryDisabled {
		t.Errorf("other task's deliveries: %s %s %s", od[0].State, od[1].State, od[2].State)
	}
	if err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: kds[0].ID, Owner: "a", State: spool.DeliveryDelivered,
		Attempt: &spool.DeliveryAttempt{Time: time.Now(), StatusCode: 200}}); err != nil {
		t.Fatal(err)
	}
	// New deliveries to a disabled endpoint are disabled; once enabled,
	// pending.
	late, lds := deliveriesFor(t, s, url)
	addDeliveries(t, s, lds[:1])
	if d := deliveries(t, s, late.ID); len(d) != 1 || d[0].State != spool.DeliveryDisabled {
		t.Errorf("a new delivery to a disabled endpoint: %v", d)
	}
	if err := s.EnableEndpoint(testCtx, url); err != nil {
		t.Fatal(err)
	}
	if err := s.EnableEndpoint(testCtx, url); err != nil {
		t.Errorf("enabling an enabled endpoint: %v", err)
	}
	if eps, _ := s.WebhookEndpoints(testCtx); len(eps) != 0 {
		t.Errorf("endpoints after enabling: %v", eps)
	}
	addDeliveries(t, s, lds[1:])
	if d := deliveries(t, s, late.ID); len(d) != 3 || d[1].State != spool.DeliveryPending {
		t.Errorf("a delivery after enabling: %v", d)
	}

	n, err := s.PruneDeliveries(testCtx, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// Ended: tk's 3, other's 2, kept's first, late's first.
	if n != 7 {
		t.Errorf("PruneDeliveries = %d, want 7", n)
	}
	if d := deliveries(t, s, kept.ID); len(d) != 2 || d[0].ID != kds[1].ID || len(d[0].Attempts) != 0 {
		t.Errorf("after pruning, kept task's deliveries: %v", d)
	}
	if d := deliveries(t, s, tk.ID); len(d) != 0 {
		t.Errorf("after pruning, disabled deliveries remain: %v", d)
	}
	if n, err := s.PruneDeliveries(testCtx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("pruning before the deliveries ended = %d, %v", n, err)
	}
}
