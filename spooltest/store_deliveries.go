package spooltest

import (
	"errors"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// deliveriesFor makes a task with a webhook_url run to completion,
// dispatches its events, and returns its deliveries.
func deliveriesFor(t *testing.T, s spool.Store, url string) (*spool.Task, []*spool.Delivery) {
	t.Helper()
	tk := task("x")
	tk.WebhookURL = url
	create(t, s, tk)
	if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusProcessing}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(testCtx, &spool.Change{ID: tk.ID, To: spool.StatusCompleted, Output: []byte(`"out"`)}); err != nil {
		t.Fatal(err)
	}
	dispatch(t, s, &spool.DispatchParams{})
	ds := deliveries(t, s, tk.ID)
	if len(ds) != 3 {
		t.Fatalf("task has %d deliveries, want 3", len(ds))
	}
	return tk, ds
}

// dispatch runs DispatchDeliveries under the cursor "webhooks", now.
func dispatch(t *testing.T, s spool.Store, p *spool.DispatchParams) (events, made int) {
	t.Helper()
	p.Cursor, p.Now = "webhooks", time.Now()
	events, made, err := s.DispatchDeliveries(testCtx, p)
	if err != nil {
		t.Fatalf("DispatchDeliveries: %v", err)
	}
	return events, made
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

// DispatchDeliveries makes a delivery of each event of a task with a
// webhook_url (or of every task, given a URL), once, with the task as of
// the event, and makes only a task's first pending delivery due.
func testDeliveriesDispatch(t *testing.T, s spool.Store) {
	plain := task("x") // no webhook_url: no deliveries without a URL
	create(t, s, plain)
	tk, ds := deliveriesFor(t, s, "https://example.com/hook")
	want := []spool.EventType{spool.EventCreated, spool.EventFor(spool.StatusProcessing), spool.EventFor(spool.StatusCompleted)}
	wantStatus := []spool.Status{spool.StatusPending, spool.StatusProcessing, spool.StatusCompleted}
	evs := allEvents(t, s)
	for i, d := range ds {
		if d.Type != want[i] || d.URL != tk.WebhookURL || d.State != spool.DeliveryPending || d.Attempted != 0 ||
			d.TaskID != tk.ID || d.Task == nil || d.Task.ID != tk.ID || d.Task.Status != wantStatus[i] {
			t.Errorf("delivery %d = %+v", i, d)
		}
		if (d.Task != nil && d.Task.Output != nil) != (i == 2) {
			t.Errorf("delivery %d shows the output: only the completion's does", i)
		}
		if due := !d.Next.IsZero(); due != (i == 0) {
			t.Errorf("delivery %d due = %v: only a task's first pending delivery is due", i, due)
		}
		found := false
		for _, ev := range evs {
			if ev.ID == d.ID {
				found = ev.Type == d.Type && ev.Time.Equal(d.EventTime)
			}
		}
		if !found {
			t.Errorf("delivery %d's id %s is not its event's", i, d.ID)
		}
	}
	if got := deliveries(t, s, plain.ID); len(got) != 0 {
		t.Errorf("a task without webhook_url got deliveries: %v", got)
	}
	// The cursor has passed every event: nothing more to make.
	if n, made := dispatch(t, s, &spool.DispatchParams{}); n != 0 || made != 0 {
		t.Errorf("dispatch again read %d events, made %d", n, made)
	}
	if next, err := s.NextDelivery(testCtx); err != nil || next.IsZero() || next.After(time.Now()) {
		t.Errorf("NextDelivery = %v, %v; want the first delivery's due time", next, err)
	}
	// With a URL, tasks without webhook_url are notified there.
	if _, err := s.Apply(testCtx, &spool.Change{ID: plain.ID, To: spool.StatusProcessing}); err != nil {
		t.Fatal(err)
	}
	if n, made := dispatch(t, s, &spool.DispatchParams{URL: "https://example.com/default", Limit: 10}); n != 1 || made != 1 {
		t.Errorf("dispatch with a URL read %d events, made %d; want 1, 1", n, made)
	}
	if got := deliveries(t, s, plain.ID); len(got) != 1 || got[0].URL != "https://example.com/default" {
		t.Errorf("deliveries to the default URL: %v", got)
	}
	// Progress: only with Progress, and not when a later event of the task
	// follows among those read.
	prog := task("x")
	prog.WebhookURL = "https://example.com/hook"
	create(t, s, prog)
	for _, ch := range []*spool.Change{{ID: prog.ID, To: spool.StatusProcessing}, {ID: prog.ID, Progress: 10}, {ID: prog.ID, Progress: 20}} {
		if _, err := s.Apply(testCtx, ch); err != nil {
			t.Fatal(err)
		}
	}
	dispatch(t, s, &spool.DispatchParams{Progress: true})
	got := deliveries(t, s, prog.ID)
	if len(got) != 3 || got[2].Type != spool.EventProgress || got[2].Task.Progress != 20 {
		t.Fatalf("with Progress, deliveries %v; want created, processing, the last progress (20)", got)
	}
	if _, err := s.Apply(testCtx, &spool.Change{ID: prog.ID, Progress: 30}); err != nil {
		t.Fatal(err)
	}
	dispatch(t, s, &spool.DispatchParams{})
	if got := deliveries(t, s, prog.ID); len(got) != 3 {
		t.Errorf("without Progress, a progress event made a delivery")
	}
	// Limit bounds the events read.
	many := task("x")
	many.WebhookURL = "https://example.com/hook"
	create(t, s, many)
	if _, err := s.Apply(testCtx, &spool.Change{ID: many.ID, To: spool.StatusProcessing}); err != nil {
		t.Fatal(err)
	}
	if n, made := dispatch(t, s, &spool.DispatchParams{Limit: 1}); n != 1 || made != 1 {
		t.Errorf("dispatch with Limit 1 read %d events, made %d", n, made)
	}
	if n, made := dispatch(t, s, &spool.DispatchParams{Limit: 1}); n != 1 || made != 1 {
		t.Errorf("the next dispatch read %d events, made %d", n, made)
	}
}

// A claim takes only due deliveries, one per task at a time; a lease keeps
// others off until it ends; an attempt is recorded only by the owner, and
// a delivery that ends lets its task's next one go.
func testDeliveriesClaim(t *testing.T, s spool.Store) {
	tk, ds := deliveriesFor(t, s, "https://example.com/hook")
	now := time.Now()
	got := claimDeliveries(t, s, "a", now, time.Minute)
	if len(got) != 1 || got[0].ID != ds[0].ID || got[0].TaskID != tk.ID {
		t.Fatalf("claim = %v, want only the first delivery", got)
	}
	if more := claimDeliveries(t, s, "b", now, time.Minute); len(more) != 0 {
		t.Fatalf("a leased delivery, or a later one of its task, was claimed: %v", more)
	}
	retry := now.Add(time.Hour)
	_, err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[0].ID, Owner: "b", State: spool.DeliveryDelivered,
		Attempt: &spool.DeliveryAttempt{Time: now, StatusCode: 200}})
	if !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("RecordDelivery by another owner = %v, want ErrInvalidTransition", err)
	}
	if _, err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[0].ID, Owner: "a", State: spool.DeliveryPending,
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
	if _, err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[0].ID, Owner: "a", State: spool.DeliveryDelivered,
		Attempt: &spool.DeliveryAttempt{Time: now, StatusCode: 200}}); !errors.Is(err, spool.ErrInvalidTransition) {
		t.Errorf("RecordDelivery after the lease was taken = %v, want ErrInvalidTransition", err)
	}
	if _, err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[0].ID, Owner: "b", State: spool.DeliveryDelivered,
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
	if _, err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[1].ID, Owner: "a", State: spool.DeliveryPending,
		Next: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got = claimDeliveries(t, s, "a", time.Now(), time.Minute)
	if len(got) != 1 || got[0].ID != ds[1].ID || got[0].Attempted != 0 {
		t.Fatalf("claim after letting go = %v", got)
	}
	// Ending it with a Lease hands the task's next delivery to the same
	// owner, leased: no other claim gets it.
	next, err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[1].ID, Owner: "a", State: spool.DeliveryFailed,
		Lease: time.Minute, Attempt: &spool.DeliveryAttempt{Time: time.Now(), StatusCode: 500}})
	if err != nil || next == nil || next.ID != ds[2].ID || next.TaskID != tk.ID {
		t.Fatalf("RecordDelivery with a Lease = %v, %v; want the task's third delivery", next, err)
	}
	if more := claimDeliveries(t, s, "b", time.Now(), time.Minute); len(more) != 0 {
		t.Fatalf("a delivery handed on was claimed again: %v", more)
	}
	if last, err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[2].ID, Owner: "a", State: spool.DeliveryDelivered,
		Lease: time.Minute, Attempt: &spool.DeliveryAttempt{Time: time.Now(), StatusCode: 200}}); err != nil || last != nil {
		t.Errorf("RecordDelivery of the last = %v, %v; want nothing handed on", last, err)
	}
	if d := deliveries(t, s, tk.ID); d[1].State != spool.DeliveryFailed || d[2].State != spool.DeliveryDelivered {
		t.Errorf("states %s %s, want failed delivered", d[1].State, d[2].State)
	}
}

// Disabling an endpoint disables its waiting deliveries and new ones until
// it is enabled; pruning deletes ended deliveries, not pending ones.
func testDeliveriesDisableAndPrune(t *testing.T, s spool.Store) {
	const url = "https://example.com/gone"
	tk, ds := deliveriesFor(t, s, url)
	other, _ := deliveriesFor(t, s, url)
	kept, kds := deliveriesFor(t, s, "https://example.com/kept")
	got := claimDeliveries(t, s, "a", time.Now(), time.Minute)
	if len(got) != 3 {
		t.Fatalf("claimed %d, want each task's first", len(got))
	}
	if _, err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: ds[0].ID, Owner: "a", State: spool.DeliveryDisabled,
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
	if _, err := s.RecordDelivery(testCtx, &spool.DeliveryRecord{ID: kds[0].ID, Owner: "a", State: spool.DeliveryDelivered,
		Attempt: &spool.DeliveryAttempt{Time: time.Now(), StatusCode: 200}}); err != nil {
		t.Fatal(err)
	}
	// New deliveries to a disabled endpoint are disabled; once enabled,
	// pending.
	late := task("x")
	late.WebhookURL = url
	create(t, s, late)
	dispatch(t, s, &spool.DispatchParams{})
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
	if _, err := s.Apply(testCtx, &spool.Change{ID: late.ID, To: spool.StatusProcessing}); err != nil {
		t.Fatal(err)
	}
	dispatch(t, s, &spool.DispatchParams{})
	if d := deliveries(t, s, late.ID); len(d) != 2 || d[1].State != spool.DeliveryPending || d[1].Next.IsZero() {
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
