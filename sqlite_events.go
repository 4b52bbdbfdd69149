package spool

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

var selectEvents = `SELECT e.seq, e.type, e.status, e.progress, e.error, e.time, e.attempt, ` +
	qualify("t", taskCols) + `
	FROM events e JOIN tasks t ON t.id = e.task_id
	WHERE e.seq > ? ORDER BY e.seq LIMIT (SELECT ?)` // see claimQuery

// qualify prefixes each column of a list with a table alias.
func qualify(alias, cols string) string {
	fields := strings.Split(cols, ",")
	for i, f := range fields {
		fields[i] = alias + "." + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}

// Events reads events after a cursor. The snapshot is the task row as it
// is now with the event's status, progress, error, attempt and time, which
// are every field a change sets but the output and a fetched input: the
// output is set only by the completion, so it shows only on a completed
// task's events. The join leaves out a deleted task's
// events; the LIMIT applies after it, so a batch is full while there are
// more. (Reading the rows of a batch's tasks once each, in a second query,
// measured 20% slower per event.)
func (s *sqliteStore) Events(ctx context.Context, after string, limit int) ([]*Event, error) {
	seq, err := eventSeq(after)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.query(ctx, selectEvents, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		var (
			seq      int64
			typ      EventType
			status   Status
			progress int
			msg      string
			at       int64
			attempt  int
		)
		t, err := scanReadable(scanFunc(func(dest ...any) error {
			return rows.Scan(append([]any{&seq, &typ, &status, &progress, &msg, &at, &attempt}, dest...)...)
		}))
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		t.Status, t.Progress, t.Error, t.Attempt = status, progress, msg, attempt
		t.Updated = time.Unix(0, at).UTC()
		if status != StatusCompleted {
			t.Output = nil
		}
		out = append(out, &Event{ID: eventID(seq, t.Updated), Type: typ, Time: t.Updated, Task: t})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// LastEventID returns the newest event's id.
func (s *sqliteStore) LastEventID(ctx context.Context) (string, error) {
	var seq, at int64
	err := s.queryRow(ctx, "SELECT seq, time FROM events ORDER BY seq DESC LIMIT 1").Scan(&seq, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("last event: %w", err)
	}
	return eventID(seq, time.Unix(0, at)), nil
}

// PruneEvents deletes old events that every stored cursor has passed, in
// chunks from the oldest, so that the writer is never held for long. Event
// times never decrease with seq (the triggers see to it), so the old events
// are a prefix of the table.
func (s *sqliteStore) PruneEvents(ctx context.Context, before time.Time) (n int, err error) {
	const chunk = 5000
	for {
		var m int64
		err = s.w.doOne(ctx, func(ctx context.Context, tx *sqlTx) error {
			// The newest event stays: its seq keeps new events' seqs above
			// every cursor.
			res, err := tx.exec(ctx, `DELETE FROM events WHERE seq IN (SELECT seq FROM events
				WHERE seq <= COALESCE((SELECT MIN(seq) FROM cursors), 9223372036854775807)
					AND seq < (SELECT MAX(seq) FROM events) ORDER BY seq LIMIT (SELECT ?))
				AND time < ?`, chunk, before.UnixNano())
			if err != nil {
				return fmt.Errorf("prune events: %w", err)
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

// Cursor reads a named cursor.
func (s *sqliteStore) Cursor(ctx context.Context, name string) (string, error) {
	var seq int64
	err := s.queryRow(ctx, "SELECT seq FROM cursors WHERE name = ?", name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read cursor %s: %w", name, err)
	}
	return eventID(seq, time.Unix(0, 0)), nil
}

// SetCursor stores a named cursor.
func (s *sqliteStore) SetCursor(ctx context.Context, name, eventID string) error {
	seq, err := eventSeq(eventID)
	if err != nil {
		return err
	}
	return s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		_, err := tx.exec(ctx, `INSERT INTO cursors (name, seq) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq)`, name, seq)
		if err != nil {
			return fmt.Errorf("set cursor %s: %w", name, err)
		}
		return nil
	})
}

// DeleteCursor deletes a named cursor.
func (s *sqliteStore) DeleteCursor(ctx context.Context, name string) error {
	return s.w.doOne(ctx, func(ctx context.Context, tx *sqlTx) error {
		if _, err := tx.exec(ctx, "DELETE FROM cursors WHERE name = ?", name); err != nil {
			return fmt.Errorf("delete cursor %s: %w", name, err)
		}
		return nil
	})
}

// Heartbeat upserts the instance and renews its leases in one transaction.
// The lease and the heartbeat's time are read inside the transaction, once
// the write lock is held.
func (s *sqliteStore) Heartbeat(ctx context.Context, inst *Instance, lease time.Duration, ids []string) ([]string, error) {
	var held []string
	list, _ := json.Marshal(append([]string{}, ids...))
	err := s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		held = held[:0]
		now := time.Now()
		leaseUntil := now.Add(lease)
		_, err := tx.exec(ctx, `INSERT INTO instances (id, host, pid, boot_id, pid_ns, started, heartbeat)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat`,
			inst.ID, inst.Host, inst.PID, inst.BootID, inst.PIDNamespace, inst.Started.UnixNano(), now.UnixNano())
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		rows, err := tx.query(ctx, `UPDATE tasks SET lease_until = ?
			WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ? AND status = 'processing'
			RETURNING id`, leaseUntil.UnixNano(), string(list), inst.ID)
		if err != nil {
			return fmt.Errorf("renew leases: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return fmt.Errorf("renew leases: %w", err)
			}
			held = append(held, id)
		}
		return rows.Err()
	})
	return held, err
}

// Instances lists the instance records.
func (s *sqliteStore) Instances(ctx context.Context) ([]*Instance, error) {
	rows, err := s.query(ctx, "SELECT id, host, pid, boot_id, pid_ns, started, heartbeat FROM instances")
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	defer rows.Close()
	var out []*Instance
	for rows.Next() {
		var in Instance
		var started, hb int64
		if err := rows.Scan(&in.ID, &in.Host, &in.PID, &in.BootID, &in.PIDNamespace, &started, &hb); err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		in.Started, in.Heartbeat = time.Unix(0, started).UTC(), time.Unix(0, hb).UTC()
		out = append(out, &in)
	}
	return out, rows.Err()
}

// recoverTasks requeues (or fails, out of attempts) the processing tasks
// whose lease ended (?1 is now) or whose holder is dead (?2, a JSON list).
const recoverTasks = `UPDATE tasks SET
	status = CASE WHEN attempt >= max_attempts THEN 'error' ELSE 'pending' END,
	error = CASE WHEN attempt >= max_attempts
		THEN 'worker lost while processing, after ' || attempt || ' attempts' ELSE '' END,
	due = CASE WHEN attempt >= max_attempts THEN NULL ELSE ?1 END,
	lease_owner = NULL, lease_until = NULL, updated = ?1
	WHERE status = 'processing' AND status != 'completed' AND (lease_until < ?1 OR lease_owner IS NULL
		OR lease_owner IN (SELECT value FROM json_each(?2)))`

// Recover requeues the tasks of dead instances and of ended leases.
func (s *sqliteStore) Recover(ctx context.Context, dead []string, now time.Time) (n int, err error) {
	ids, _ := json.Marshal(append([]string{}, dead...))
	err = s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		res, err := tx.exec(ctx, recoverTasks, now.UnixNano(), string(ids))
		if err != nil {
			return fmt.Errorf("recover tasks: %w", err)
		}
		m, _ := res.RowsAffected()
		n = int(m)
		if _, err := tx.exec(ctx, "DELETE FROM instances WHERE id IN (SELECT value FROM json_each(?))", string(ids)); err != nil {
			return fmt.Errorf("recover tasks: %w", err)
		}
		return nil
	})
	return n, err
}

// RemoveInstance deletes an instance record.
func (s *sqliteStore) RemoveInstance(ctx context.Context, id string) error {
	return s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		if _, err := tx.exec(ctx, "DELETE FROM instances WHERE id = ?", id); err != nil {
			return fmt.Errorf("remove instance: %w", err)
		}
		return nil
	})
}
