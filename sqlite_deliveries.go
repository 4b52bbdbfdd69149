package spool

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// dispatchDeliveries makes the deliveries of the events after ?1 up to
// ?2 in one statement: the endpoint is the task's webhook_url or ?3; a
// progress event counts only with ?4 and if no later event of its task is
// among them; a delivery is due (at ?5) only if it is its task's first
// pending one. SQLite runs the SELECT to its end before inserting (it
// reads the table it inserts into), so the EXISTS sees only the pending
// deliveries from before, and ROW_NUMBER orders a task's new ones.
const dispatchDeliveries = `INSERT OR IGNORE INTO deliveries (seq, event_time, task_id, type, url,
		ev_status, ev_progress, ev_error, ev_attempt, state, due, created, updated)
	SELECT seq, time, task_id, type, url, status, progress, error, attempt,
		CASE WHEN off THEN 'disabled' ELSE 'pending' END,
		CASE WHEN off OR rn > 1 OR EXISTS (SELECT 1 FROM deliveries p
			WHERE p.task_id = x.task_id AND p.state = 'pending') THEN NULL ELSE ?5 END,
		?5, ?5
	FROM (SELECT y.*, ROW_NUMBER() OVER (PARTITION BY task_id ORDER BY seq) AS rn,
			EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.url = y.url) AS off
		FROM (SELECT e.seq, e.time, e.task_id, e.type, e.status, e.progress, e.error, e.attempt,
				CASE WHEN t.webhook_url != '' THEN t.webhook_url ELSE ?3 END AS url,
				LEAD(e.seq) OVER (PARTITION BY e.task_id ORDER BY e.seq) AS later
			FROM events e JOIN tasks t ON t.id = e.task_id
			WHERE e.seq > ?1 AND e.seq <= ?2 AND (t.webhook_url != '' OR ?3 != '')) y
		WHERE y.type != 'task.progress' OR (?4 AND y.later IS NULL)) x
	ORDER BY seq`

const deliveryCols = `seq, event_time, task_id, type, url, ev_status, ev_progress, ev_error, ev_attempt,
	state, attempts, due, created, updated`

// DispatchDeliveries makes deliveries from events and moves the cursor,
// in one transaction.
func (s *sqliteStore) DispatchDeliveries(ctx context.Context, p *DispatchParams) (events, made int, err error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	err = s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		events, made = 0, 0
		var cur, upto sql.NullInt64
		rows, err := tx.query(ctx, `SELECT c.seq, (SELECT MAX(seq) FROM (SELECT seq FROM events
			WHERE seq > COALESCE(c.seq, 0) ORDER BY seq LIMIT (SELECT ?2))),
			(SELECT COUNT(*) FROM (SELECT seq FROM events WHERE seq > COALESCE(c.seq, 0) ORDER BY seq LIMIT (SELECT ?2)))
			FROM (SELECT (SELECT seq FROM cursors WHERE name = ?1) AS seq) c`, p.Cursor, limit)
		if err != nil {
			return fmt.Errorf("dispatch deliveries: %w", err)
		}
		if rows.Next() {
			err = rows.Scan(&cur, &upto, &events)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return fmt.Errorf("dispatch deliveries: %w", err)
		}
		if !upto.Valid {
			return nil
		}
		res, err := tx.exec(ctx, dispatchDeliveries, cur.Int64, upto.Int64, p.URL, p.Progress, p.Now.UnixNano())
		if err != nil {
			return fmt.Errorf("dispatch deliveries: %w", err)
		}
		n, _ := res.RowsAffected()
		made = int(n)
		if _, err := tx.exec(ctx, `INSERT INTO cursors (name, seq) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq)`, p.Cursor, upto.Int64); err != nil {
			return fmt.Errorf("dispatch deliveries: set cursor %s: %w", p.Cursor, err)
		}
		return nil
	})
	return events, made, err
}

// claimDeliveries leases (?1, until ?2) up to ?4 deliveries due at ?3,
// read in order from the partial index of due rows.
const claimDeliveries = `UPDATE deliveries SET lease_owner = ?1, due = ?2
	WHERE seq IN (SELECT seq FROM deliveries INDEXED BY deliveries_due
		WHERE due IS NOT NULL AND due <= ?3 ORDER BY due LIMIT (SELECT ?4))
	RETURNING ` + deliveryCols

const nextDelivery = `SELECT due FROM deliveries INDEXED BY deliveries_due
	WHERE due IS NOT NULL ORDER BY due LIMIT 1`

// ClaimDeliveries leases the earliest due deliveries. A lease is kept in
// due itself: the delivery is due again when the lease ends.
func (s *sqliteStore) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*Delivery, error) {
	var out []*Delivery
	err := s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		rows, err := tx.query(ctx, claimDeliveries, owner, time.Now().Add(lease).UnixNano(), now.UnixNano(), limit)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		out, err = scanDeliveries(rows)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The tasks are read after the commit, from the read pool: the event's
	// own fields are in the delivery row, and the task's others were read
	// as they are now in the claim's transaction too (the output only
	// shows on a completion), so the one writer need not spend its time here.
	// The deliveries are leased now: an ended context must not lose them.
	if err := withTasks(context.WithoutCancel(ctx), s.query, out); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return out, nil
}

// scanDeliveries reads rows of deliveryCols and closes them.
func scanDeliveries(rows *sql.Rows) ([]*Delivery, error) {
	defer rows.Close()
	var out []*Delivery
	for rows.Next() {
		var (
			d                         Delivery
			seq, at, cre, upd         int64
			due                       sql.NullInt64
			typ, state, url, evStatus string
		)
		t := &Task{}
		if err := rows.Scan(&seq, &at, &d.TaskID, &typ, &url, &evStatus, &t.Progress, &t.Error, &t.Attempt,
			&state, &d.Attempted, &due, &cre, &upd); err != nil {
			return nil, err
		}
		d.EventTime = time.Unix(0, at).UTC()
		d.ID = eventID(seq, d.EventTime)
		d.Type, d.State, d.URL = EventType(typ), DeliveryState(state), url
		t.Status, t.Updated = Status(evStatus), d.EventTime
		d.Task = t // the event's fields, until withTasks adds the rest
		if due.Valid {
			d.Next = time.Unix(0, due.Int64).UTC()
		}
		d.Created, d.Updated = time.Unix(0, cre).UTC(), time.Unix(0, upd).UTC()
		out = append(out, &d)
	}
	return out, rows.Err()
}

// withTasks completes each delivery's Task from its task row, as Events
// does an event's: the event's status, progress, error, attempt and time
// over the row's other fields, the output only on a completion. A
// delivery whose task is gone gets a nil Task.
func withTasks(ctx context.Context, query func(context.Context, string, ...any) (*sql.Rows, error), ds []*Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	var (
		rows *sql.Rows
		err  error
	)
	if len(ds) == 1 { // a sender going on with a task: the plain lookup is cheaper
		rows, err = query(ctx, selectTask, ds[0].TaskID)
	} else {
		ids := make([]string, len(ds))
		for i, d := range ds {
			ids[i] = d.TaskID
		}
		list, _ := json.Marshal(ids)
		rows, err = query(ctx, `SELECT `+taskCols+` FROM tasks WHERE id IN (SELECT value FROM json_each(?))`, string(list))
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	tasks := map[string]*Task{}
	for rows.Next() {
		t, err := scanReadable(rows)
		if err != nil {
			return err
		}
		tasks[t.ID] = t
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, d := range ds {
		d.overlay(tasks[d.TaskID])
	}
	return nil
}

// overlay makes d's Task, which holds the event's fields, whole with the
// task's row: the event's status, progress, error, attempt and time over
// the row's other fields, the output only on a completion. A nil row (the
// task is gone) leaves d with a nil Task.
func (d *Delivery) overlay(row *Task) {
	if row == nil {
		d.Task = nil
		return
	}
	t := *row
	t.Status, t.Progress, t.Error, t.Attempt, t.Updated = d.Task.Status, d.Task.Progress, d.Task.Error, d.Task.Attempt, d.Task.Updated
	if t.Status != StatusCompleted {
		t.Output = nil
	}
	d.Task = &t
}

// RecordDelivery records an attempt and the delivery's new state.
func (s *sqliteStore) RecordDelivery(ctx context.Context, r *DeliveryRecord) (*Delivery, error) {
	seq, err := eventSeq(r.ID)
	if err != nil {
		return nil, err
	}
	switch r.State {
	case DeliveryPending, DeliveryDelivered, DeliveryFailed, DeliveryDisabled:
	default:
		return nil, fmt.Errorf("record delivery: unknown state %q", r.State)
	}
	var next *Delivery
	op := &writeOp{ctx: ctx, fn: func(ctx context.Context, tx *sqlTx) error {
		next = nil
		now := time.Now().UnixNano()
		var due any
		if r.State == DeliveryPending {
			due = r.Next.UnixNano()
		}
		tried := 0
		if r.Attempt != nil {
			tried = 1
		}
		var (
			taskID, url string
			n           int
		)
		rows, err := tx.query(ctx, `UPDATE deliveries SET state = ?, attempts = attempts + ?, due = ?,
			lease_owner = NULL, updated = ? WHERE seq = ? AND lease_owner = ? AND due IS NOT NULL
			RETURNING task_id, url, attempts`, string(r.State), tried, due, now, seq, r.Owner)
		if err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		found := rows.Next()
		if found {
			err = rows.Scan(&taskID, &url, &n)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		if !found {
			return fmt.Errorf("record delivery %s: not held by %s: %w", r.ID, r.Owner, ErrInvalidTransition)
		}
		if a := r.Attempt; a != nil {
			if _, err := tx.exec(ctx, `INSERT INTO delivery_attempts (seq, n, time, status_code, latency, error)
				VALUES (?, ?, ?, ?, ?, ?)`, seq, n, a.Time.UnixNano(), a.StatusCode, int64(a.Latency), a.Error); err != nil {
				return fmt.Errorf("record delivery attempt: %w", err)
			}
		}
		if r.State == DeliveryPending {
			return nil
		}
		if r.State == DeliveryDisabled && r.Disable != "" {
			if _, err := tx.exec(ctx, `INSERT INTO webhook_endpoints (url, disabled, reason) VALUES (?, ?, ?)
				ON CONFLICT (url) DO UPDATE SET disabled = excluded.disabled, reason = excluded.reason`,
				url, now, r.Disable); err != nil {
				return fmt.Errorf("disable endpoint: %w", err)
			}
			// Held ones (a live lease) record their own attempt. A 410 is
			// rare, so the scan of the table is no burden.
			if _, err := tx.exec(ctx, `UPDATE deliveries SET state = 'disabled', due = NULL, lease_owner = NULL,
				updated = ?1 WHERE url = ?2 AND state = 'pending' AND (lease_owner IS NULL OR due <= ?1)`,
				now, url); err != nil {
				return fmt.Errorf("disable endpoint: %w", err)
			}
		}
		// The task's next delivery may go now: due at once, or leased to
		// this owner.
		var owner any
		nextDue := now
		if r.Lease > 0 {
			owner, nextDue = r.Owner, now+int64(r.Lease)
		}
		rows, err = tx.query(ctx, `UPDATE deliveries SET due = ?1, lease_owner = ?3 WHERE seq = (SELECT seq FROM deliveries
			WHERE task_id = ?2 AND state = 'pending' ORDER BY seq LIMIT 1) AND due IS NULL
			RETURNING `+deliveryCols, nextDue, taskID, owner)
		if err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		ds, err := scanDeliveries(rows)
		if err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		if len(ds) == 0 || r.Lease <= 0 {
			return nil
		}
		next = ds[0]
		return nil
	}}
	if r.State == DeliveryDelivered && r.Attempt != nil {
		// The common case, which the writer records together with others
		// like it (see recordMerged), its next delivery set here.
		op.record = &recordOp{rec: r, seq: seq, next: &next}
	}
	if err := s.w.submit(op); err != nil || next == nil {
		return nil, err
	}
	// Leased now: an ended context must not lose it (see ClaimDeliveries).
	rctx := context.WithoutCancel(ctx)
	if err := withTasks(rctx, s.query, []*Delivery{next}); err != nil {
		return nil, fmt.Errorf("record delivery: %w", err)
	}
	return next, nil
}

// Deliveries reads a task's deliveries and their attempts.
func (s *sqliteStore) Deliveries(ctx context.Context, taskID string) ([]*Delivery, error) {
	rows, err := s.query(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE task_id = ? ORDER BY seq`, taskID)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	out, err := scanDeliveries(rows)
	if err == nil {
		err = withTasks(ctx, s.query, out)
	}
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	bySeq := map[int64]*Delivery{}
	for _, d := range out {
		if d.State != DeliveryPending {
			d.Next = time.Time{}
		}
		seq, _ := eventSeq(d.ID)
		bySeq[seq] = d
	}
	if len(out) == 0 {
		return nil, nil
	}
	rows, err = s.query(ctx, `SELECT a.seq, a.time, a.status_code, a.latency, a.error
		FROM deliveries d JOIN delivery_attempts a ON a.seq = d.seq WHERE d.task_id = ? ORDER BY a.seq, a.n`, taskID)
	if err != nil {
		return nil, fmt.Errorf("read delivery attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq, at, lat int64
			a            DeliveryAttempt
		)
		if err := rows.Scan(&seq, &at, &a.StatusCode, &lat, &a.Error); err != nil {
			return nil, fmt.Errorf("read delivery attempts: %w", err)
		}
		a.Time, a.Latency = time.Unix(0, at).UTC(), time.Duration(lat)
		if d := bySeq[seq]; d != nil {
			d.Attempts = append(d.Attempts, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read delivery attempts: %w", err)
	}
	return out, nil
}

// NextDelivery reads the earliest due time.
func (s *sqliteStore) NextDelivery(ctx context.Context) (time.Time, error) {
	var due int64
	err := s.queryRow(ctx, nextDelivery).Scan(&due)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("next delivery: %w", err)
	}
	return time.Unix(0, due).UTC(), nil
}

// WebhookEndpoints lists the disabled endpoints.
func (s *sqliteStore) WebhookEndpoints(ctx context.Context) ([]*WebhookEndpoint, error) {
	rows, err := s.query(ctx, `SELECT url, disabled, reason FROM webhook_endpoints ORDER BY url`)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	defer rows.Close()
	var out []*WebhookEndpoint
	for rows.Next() {
		var (
			ep WebhookEndpoint
			at int64
		)
		if err := rows.Scan(&ep.URL, &at, &ep.Reason); err != nil {
			return nil, fmt.Errorf("list webhook endpoints: %w", err)
		}
		ep.Disabled = time.Unix(0, at).UTC()
		out = append(out, &ep)
	}
	return out, rows.Err()
}

// EnableEndpoint forgets a disabled endpoint.
func (s *sqliteStore) EnableEndpoint(ctx context.Context, url string) error {
	return s.w.doOne(ctx, func(ctx context.Context, tx *sqlTx) error {
		if _, err := tx.exec(ctx, "DELETE FROM webhook_endpoints WHERE url = ?", url); err != nil {
			return fmt.Errorf("enable endpoint: %w", err)
		}
		return nil
	})
}

// PruneDeliveries deletes ended deliveries in chunks, their attempts going
// with them (a foreign key), so the writer is never held for long.
func (s *sqliteStore) PruneDeliveries(ctx context.Context, before time.Time) (n int, err error) {
	const chunk = 1000
	for {
		var m int64
		err = s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
			res, err := tx.exec(ctx, `DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries
				WHERE state != 'pending' AND updated < ? ORDER BY seq LIMIT (SELECT ?))`, before.UnixNano(), chunk)
			if err != nil {
				return fmt.Errorf("prune deliveries: %w", err)
			}
			m, _ = res.RowsAffected()
			return nil
		})
		n += int(m)
		if err != nil || m < chunk {
			return n, err
		}
	}
}

// recordOp is a delivered attempt to record (RecordDelivery's common
// case), which the writer records together with the others next to it in
// a batch: three statements for the run instead of three for each and a
// savepoint. next receives the task's next delivery, if handed on.
type recordOp struct {
	rec  *DeliveryRecord
	seq  int64
	next **Delivery
	err  error
}

// mergeableRecord reports whether two records can share statements: the
// same owner, and the same lease for the next deliveries handed on.
func mergeableRecord(a, b *recordOp) bool {
	return a.rec.Owner == b.rec.Owner && a.rec.Lease == b.rec.Lease
}

// recordDelivered records a run of delivered attempts of one owner: their
// deliveries' new state, their attempts, and each task's next delivery
// made due, or leased to the owner. A record whose delivery the owner no
// longer holds gets ErrInvalidTransition in its recordOp, as
// RecordDelivery alone would.
func (tx *sqlTx) recordDelivered(ctx context.Context, ops []*recordOp) error {
	first := ops[0].rec
	now := time.Now().UnixNano()
	seqs := make([]int64, len(ops))
	for i, o := range ops {
		seqs[i] = o.seq
	}
	list, _ := json.Marshal(seqs)
	rows, err := tx.query(ctx, `UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, due = NULL,
		lease_owner = NULL, updated = ?1 WHERE seq IN (SELECT value FROM json_each(?2)) AND lease_owner = ?3
		AND due IS NOT NULL RETURNING seq, task_id, attempts`, now, string(list), first.Owner)
	if err != nil {
		return fmt.Errorf("record deliveries: %w", err)
	}
	type held struct {
		task string
		n    int
	}
	found := make(map[int64]held, len(ops))
	for rows.Next() {
		var (
			seq int64
			h   held
		)
		if err := rows.Scan(&seq, &h.task, &h.n); err != nil {
			rows.Close()
			return fmt.Errorf("record deliveries: %w", err)
		}
		found[seq] = h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("record deliveries: %w", err)
	}
	attempts := make([][6]any, 0, len(found))
	tasks := make([]string, 0, len(found))
	for _, o := range ops {
		h, ok := found[o.seq]
		if !ok {
			o.err = fmt.Errorf("record delivery %s: not held by %s: %w", o.rec.ID, o.rec.Owner, ErrInvalidTransition)
			continue
		}
		a := o.rec.Attempt
		attempts = append(attempts, [6]any{o.seq, h.n, a.Time.UnixNano(), a.StatusCode, int64(a.Latency), a.Error})
		tasks = append(tasks, h.task)
	}
	if len(tasks) == 0 {
		return nil
	}
	list, _ = json.Marshal(attempts)
	if _, err := tx.exec(ctx, `INSERT INTO delivery_attempts (seq, n, time, status_code, latency, error)
		SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 FROM json_each(?)`,
		string(list)); err != nil {
		return fmt.Errorf("record delivery attempts: %w", err)
	}
	var owner any
	nextDue := now
	if first.Lease > 0 {
		owner, nextDue = first.Owner, now+int64(first.Lease)
	}
	list, _ = json.Marshal(tasks)
	rows, err = tx.query(ctx, `UPDATE deliveries SET due = ?1, lease_owner = ?3 WHERE seq IN (
			SELECT (SELECT seq FROM deliveries d WHERE d.task_id = j.value AND d.state = 'pending'
				ORDER BY d.seq LIMIT 1) FROM json_each(?2) j)
		AND due IS NULL RETURNING `+deliveryCols, nextDue, string(list), owner)
	if err != nil {
		return fmt.Errorf("record deliveries: %w", err)
	}
	ds, err := scanDeliveries(rows)
	if err != nil {
		return fmt.Errorf("record deliveries: %w", err)
	}
	if first.Lease <= 0 {
		return nil
	}
	byTask := make(map[string]*Delivery, len(ds))
	for _, d := range ds {
		byTask[d.TaskID] = d
	}
	for _, o := range ops {
		if h, ok := found[o.seq]; ok && o.err == nil {
			if d := byTask[h.task]; d != nil {
				*o.next = d
				delete(byTask, h.task) // one task's next goes to one sender
			}
		}
	}
	return nil
}
