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
	idempotency_key, run_at, attempt, max_attempts, created, updated`

const selectTask = `SELECT ` + taskCols + ` FROM tasks WHERE id = ?`

const selectByIdempotencyKey = `SELECT ` + taskCols + ` FROM tasks WHERE idempotency_key = ?`

type scanner interface{ Scan(dest ...any) error }

// scanTask reads a row of taskCols.
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
		&created, &updated)
	if err != nil {
		return nil, err
	}
	t.ParentID, t.IdempotencyKey = parent.String, idem.String
	if runAt != 0 {
		t.RunAt = time.Unix(0, runAt).UTC()
	}
	t.Created, t.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	if output.Valid {
		t.Output = json.RawMessage(output.String)
	}
	for _, c := range []struct {
		s   sql.NullString
		dst any
	}{{input, &t.Input}, {workflow, &t.Workflow}, {results, &t.Results}, {steps, &t.Steps}} {
		if c.s.Valid {
			if err := json.Unmarshal([]byte(c.s.String), c.dst); err != nil {
				return nil, fmt.Errorf("decode task %s: %w", t.ID, err)
			}
		}
	}
	if options.Valid {
		if t.Options, err = decodeOptions([]byte(options.String)); err != nil {
			return nil, fmt.Errorf("decode task %s: options: %w", t.ID, err)
		}
	}
	return &t, nil
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
	t, err := scanTask(row)
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

// DeleteTask deletes a finished task. Its events stay until pruned, but
// are no longer read: the event reader joins the task row.
func (s *sqliteStore) DeleteTask(ctx context.Context, id string) error {
	return s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		res, err := tx.exec(ctx, `DELETE FROM tasks WHERE id = ?
			AND status IN ('completed', 'failed', 'error', 'cancelled')`, id)
		if err != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		cur, err := tx.GetTask(ctx, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("delete task %s: task is %s, only a finished task can be deleted: %w",
			id, cur.Status, ErrInvalidTransition)
	})
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
	var created int64
	err = s.queryRow(ctx, `SELECT created FROM tasks WHERE status = 'pending' AND status != 'completed'
		ORDER BY id LIMIT 1`).Scan(&created)
	switch {
	case err == nil:
		st.OldestPending = time.Unix(0, created).UTC()
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}
