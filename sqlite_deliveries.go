package spool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// insertDelivery stores one delivery: disabled if its endpoint is, due
// (?7) only if its task has no pending delivery before it, else queued.
const insertDelivery = `INSERT OR IGNORE INTO deliveries
	(seq, event_time, task_id, type, url, data, state, due, created, updated)
	SELECT ?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN d THEN 'disabled' ELSE 'pending' END,
		CASE WHEN d OR EXISTS (SELECT 1 FROM deliveries WHERE task_id = ?3 AND state = 'pending')
			THEN NULL ELSE ?7 END, ?8, ?8
	FROM (SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE url = ?5) AS d)`

const deliveryCols = `seq, event_time, task_id, type, url, data, state, attempts, due, created, updated`

// AddDeliveries inserts deliveries and moves the cursor, in one transaction.
func (s *sqliteStore) AddDeliveries(ctx context.Context, ds []*Delivery, cursor, through string) error {
	last, err := eventSeq(through)
	if err != nil {
		return err
	}
	seqs := make([]int64, len(ds))
	for i, d := range ds {
		if seqs[i], err = eventSeq(d.ID); err != nil {
			return err
		}
	}
	return s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		now := time.Now().UnixNano()
		for i, d := range ds {
			if _, err := tx.exec(ctx, insertDelivery, seqs[i], d.EventTime.UnixNano(), d.TaskID, string(d.Type),
				d.URL, string(d.Data), d.Next.UnixNano(), now); err != nil {
				return fmt.Errorf("add deliveries: %w", err)
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO cursors (name, seq) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq)`, cursor, last); err != nil {
			return fmt.Errorf("add deliveries: set cursor %s: %w", cursor, err)
		}
		return nil
	})
}

// ClaimDeliveries leases the earliest due deliveries. A lease is kept in
// due itself: the delivery is due again when the lease ends.
func (s *sqliteStore) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*Delivery, error) {
	var out []*Delivery
	err := s.w.doOne(ctx, func(ctx context.Context, tx *sqlTx) error {
		out = out[:0]
		rows, err := tx.query(ctx, `UPDATE deliveries SET lease_owner = ?1, due = ?2
			WHERE seq IN (SELECT seq FROM deliveries INDEXED BY deliveries_due
				WHERE due IS NOT NULL AND due <= ?3 ORDER BY due LIMIT (SELECT ?4))
			RETURNING `+deliveryCols, owner, time.Now().Add(lease).UnixNano(), now.UnixNano(), limit)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				return fmt.Errorf("claim deliveries: %w", err)
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, err
}

func scanDelivery(rows interface{ Scan(...any) error }) (*Delivery, error) {
	var (
		d                     Delivery
		seq, at, cre, upd     int64
		due                   sql.NullInt64
		typ, state, data, url string
	)
	if err := rows.Scan(&seq, &at, &d.TaskID, &typ, &url, &data, &state, &d.Attempted, &due, &cre, &upd); err != nil {
		return nil, err
	}
	d.EventTime = time.Unix(0, at).UTC()
	d.ID = eventID(seq, d.EventTime)
	d.Type, d.State, d.URL, d.Data = EventType(typ), DeliveryState(state), url, []byte(data)
	if due.Valid {
		d.Next = time.Unix(0, due.Int64).UTC()
	}
	d.Created, d.Updated = time.Unix(0, cre).UTC(), time.Unix(0, upd).UTC()
	return &d, nil
}

// RecordDelivery records an attempt and the delivery's new state.
func (s *sqliteStore) RecordDelivery(ctx context.Context, r *DeliveryRecord) error {
	seq, err := eventSeq(r.ID)
	if err != nil {
		return err
	}
	switch r.State {
	case DeliveryPending, DeliveryDelivered, DeliveryFailed, DeliveryDisabled:
	default:
		return fmt.Errorf("record delivery: unknown state %q", r.State)
	}
	return s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
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
		err := tx.conn.QueryRowContext(ctx, `UPDATE deliveries SET state = ?, attempts = attempts + ?, due = ?,
			lease_owner = NULL, updated = ? WHERE seq = ? AND lease_owner = ? AND due IS NOT NULL
			RETURNING task_id, url, attempts`, string(r.State), tried, due, now, seq, r.Owner).Scan(&taskID, &url, &n)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("record delivery %s: not held by %s: %w", r.ID, r.Owner, ErrInvalidTransition)
		}
		if err != nil {
			return fmt.Errorf("record delivery: %w", err)
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
		// The task's next delivery may go now.
		if _, err := tx.exec(ctx, `UPDATE deliveries SET due = ?1 WHERE seq = (SELECT seq FROM deliveries
			WHERE task_id = ?2 AND state = 'pending' ORDER BY seq LIMIT 1) AND due IS NULL`, now, taskID); err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		return nil
	})
}

// Deliveries reads a task's deliveries and their attempts.
func (s *sqliteStore) Deliveries(ctx context.Context, taskID string) ([]*Delivery, error) {
	rows, err := s.query(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE task_id = ? ORDER BY seq`, taskID)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	var out []*Delivery
	bySeq := map[int64]*Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("read deliveries: %w", err)
		}
		if d.State != DeliveryPending {
			d.Next = time.Time{}
		}
		seq, _ := eventSeq(d.ID)
		bySeq[seq] = d
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
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
	err := s.queryRow(ctx, `SELECT due FROM deliveries INDEXED BY deliveries_due
		WHERE due IS NOT NULL ORDER BY due LIMIT 1`).Scan(&due)
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
