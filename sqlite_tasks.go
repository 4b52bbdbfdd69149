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

// taskCols are the columns scanTask reads. ref and folder have columns of
// their own for filtering, but a task shows them among its options.
const taskCols = `id, kind, status, progress, input, options, output, error, created_by,
	parent_id, workflow, results, steps, url, file_id, webhook_url,
	idempotency_key, run_at, attempt, max_attempts, created, updated, step`

const selectTask = `SELECT ` + taskCols + ` FROM tasks WHERE id = ?`

const selectByIdempotencyKey = `SELECT ` + taskCols + ` FROM tasks WHERE idempotency_key = ?`

type scanner interface{ Scan(dest ...any) error }

// scanTask reads a row of taskCols. A JSON column that cannot be decoded
// leaves its field empty and makes the error a *decodeError, with the rest
// of the task returned: one damaged row must not fail a list, an event
// stream or a claim of other rows.
func scanTask(r scanner) (*Task, error) {
	var (
		t                                                Task
		input, options, output, workflow, results, steps sql.NullString
		parent, idem                                     sql.NullString
		runAt, created, updated                          int64
	)
	err := r.Scan(&t.ID, &t.Kind, &t.Status, &t.Progress, &input, &options, &output,
		&t.Error, &t.CreatedBy, &parent, &workflow, &results, &steps, &t.URL, &t.FileID,
		&t.WebhookURL, &idem, &runAt, &t.Attempt, &t.MaxAttempts,
		&created, &updated, &t.Step)
	if err != nil {
		return nil, err
	}
	t.ParentID, t.IdempotencyKey = parent.String, idem.String
	if runAt != 0 {
		t.RunAt = time.Unix(0, runAt).UTC()
	}
	t.Created, t.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	if output.Valid {
		if json.Valid([]byte(output.String)) {
			t.Output = json.RawMessage(output.String)
		} else {
			err = &decodeError{id: t.ID, column: "output", err: errors.New("not valid JSON")}
		}
	}
	for _, c := range []struct {
		name string
		s    sql.NullString
		dst  any
	}{{"input", input, &t.Input}, {"workflow", workflow, &t.Workflow},
		{"results", results, &t.Results}, {"steps", steps, &t.Steps}} {
		if c.s.Valid {
			if derr := json.Unmarshal([]byte(c.s.String), c.dst); derr != nil && err == nil {
				err = &decodeError{id: t.ID, column: c.name, err: derr}
			}
		}
	}
	if options.Valid {
		opts, derr := decodeOptions([]byte(options.String))
		if derr != nil && err == nil {
			err = &decodeError{id: t.ID, column: "options", err: derr}
		}
		t.Options = opts
	}
	return &t, err
}

// decodeError is a stored task's JSON column that cannot be decoded.
type decodeError struct {
	id, column string
	err        error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("decode task %s: %s: %v", e.id, e.column, e.err)
}

func (e *decodeError) Unwrap() error { return e.err }

// scanReadable is scanTask for readers: a task with a column that cannot be
// decoded is returned without that field rather than failing the read.
func scanReadable(r scanner) (*Task, error) {
	t, err := scanTask(r)
	var de *decodeError
	if errors.As(err, &de) {
		return t, nil
	}
	return t, err
}

// jsonColumn encodes v for a JSON column: NULL for nil or empty values.
func jsonColumn(v any) (any, error) {
	switch x := v.(type) {
	case json.RawMessage:
		if len(x) == 0 {
			return nil, nil
		}
		return string(x), nil
	case *File:
		if x == nil {
			return nil, nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil, nil
		}
	case []TaskSummary:
		if len(x) == 0 {
			return nil, nil
		}
	case []Step:
		if len(x) == 0 {
			return nil, nil
		}
	case *Results:
		if x == nil {
			return nil, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// GetTask reads a task through the read pool.
func (s *sqliteStore) GetTask(ctx context.Context, id string) (*Task, error) {
	return getTask(ctx, s.queryRow(ctx, selectTask, id), id)
}

func getTask(_ context.Context, row *sql.Row, id string) (*Task, error) {
	t, err := scanReadable(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("task %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get task %s: %w", id, err)
	}
	return t, nil
}

var _ Tx = (*sqlTx)(nil)

// GetTask reads a task inside the transaction, seeing its uncommitted writes.
func (tx *sqlTx) GetTask(ctx context.Context, id string) (*Task, error) {
	st, err := tx.stmt(ctx, selectTask)
	if err != nil {
		return nil, fmt.Errorf("get task: %w", err)
	}
	return getTask(ctx, st.QueryRowContext(ctx, id), id)
}

// Stats reads the trigger-kept counts.
func (s *sqliteStore) Stats(ctx context.Context) (*Stats, error) {
	rows, err := s.query(ctx, "SELECT kind, "+strings.Join(countCols, ", ")+" FROM kind_counts")
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	st := &Stats{ByStatus: map[Status]int{}, ByKind: map[string]map[Status]int{}}
	for rows.Next() {
		var kind string
		var n [len(statuses)]int
		dest := []any{&kind}
		for i := range n {
			dest = append(dest, &n[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		for i, c := range n {
			if c == 0 {
				continue
			}
			st.ByStatus[statuses[i]] += c
			if st.ByKind[kind] == nil {
				st.ByKind[kind] = map[Status]int{}
			}
			st.ByKind[kind][statuses[i]] = c
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	st.OldestPendingByKind = map[string]time.Time{}
	for kind, n := range st.ByKind {
		if n[StatusPending] == 0 {
			continue
		}
		// The oldest first in the status index: it stops at the first
		// pending task of the kind.
		var created int64
		err = s.queryRow(ctx, `SELECT created FROM tasks WHERE status = 'pending' AND status != 'completed'
			AND kind = ? ORDER BY id LIMIT 1`, kind).Scan(&created)
		switch {
		case err == nil:
			at := time.Unix(0, created).UTC()
			st.OldestPendingByKind[kind] = at
			if st.OldestPending.IsZero() || at.Before(st.OldestPending) {
				st.OldestPending = at
			}
		case !errors.Is(err, sql.ErrNoRows): // counts and rows may differ for a moment
			return nil, fmt.Errorf("stats: %w", err)
		}
	}
	return st, nil
}
