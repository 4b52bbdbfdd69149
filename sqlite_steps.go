package spool

import (
	"context"
	"database/sql"
	"fmt"
)

const selectSteps = `SELECT ` + taskCols + ` FROM tasks WHERE parent_id = ? ORDER BY id`

// Steps reads a workflow's steps through the read pool.
func (s *sqliteStore) Steps(ctx context.Context, parentID string) ([]*Task, error) {
	rows, err := s.query(ctx, selectSteps, parentID)
	if err != nil {
		return nil, fmt.Errorf("read steps of %s: %w", parentID, err)
	}
	return scanSteps(rows, parentID)
}

// Steps reads a workflow's steps inside the transaction, seeing its
// uncommitted writes: a step's outcome committed in the same batch as a
// sibling's is counted by both.
func (tx *sqlTx) Steps(ctx context.Context, parentID string) ([]*Task, error) {
	rows, err := tx.query(ctx, selectSteps, parentID)
	if err != nil {
		return nil, fmt.Errorf("read steps of %s: %w", parentID, err)
	}
	return scanSteps(rows, parentID)
}

func scanSteps(rows *sql.Rows, parentID string) ([]*Task, error) {
	defer rows.Close()
	var out []*Task
	for rows.Next() {
		t, err := scanReadable(rows)
		if err != nil {
			return nil, fmt.Errorf("read steps of %s: %w", parentID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read steps of %s: %w", parentID, err)
	}
	return out, nil
}

const countUnfinished = `SELECT (SELECT status FROM tasks WHERE id = ?1),
	(SELECT count(*) FROM tasks WHERE parent_id = ?1 AND status NOT IN ` + finishedStatuses + `)`

// UnfinishedSteps counts through the read pool.
func (s *sqliteStore) UnfinishedSteps(ctx context.Context, parentID string) (int, Status, error) {
	return scanUnfinished(s.queryRow(ctx, countUnfinished, parentID), parentID)
}

// UnfinishedSteps counts inside the transaction. The answer holds until
// the transaction's next statement, so a count repeated before that is not
// run again: the hooks of ten sibling steps finished by one UPDATE count
// once, not ten times (most of a leaf step's hook).
func (tx *sqlTx) UnfinishedSteps(ctx context.Context, parentID string) (int, Status, error) {
	if c := tx.counted; c.parent == parentID && parentID != "" {
		return c.n, c.status, nil
	}
	st, err := tx.stmt(ctx, countUnfinished)
	if err != nil {
		return 0, "", fmt.Errorf("count steps of %s: %w", parentID, err)
	}
	n, status, err := scanUnfinished(st.QueryRowContext(ctx, parentID), parentID)
	if err == nil {
		tx.counted = unfinished{parent: parentID, n: n, status: status}
	}
	return n, status, err
}

func scanUnfinished(row *sql.Row, parentID string) (int, Status, error) {
	var n int
	var status sql.NullString
	if err := row.Scan(&status, &n); err != nil {
		return 0, "", fmt.Errorf("count steps of %s: %w", parentID, err)
	}
	if !status.Valid {
		return 0, "", fmt.Errorf("task %s: %w", parentID, ErrNotFound)
	}
	return n, Status(status.String), nil
}

// SetResults records a task's results in its own transaction.
func (s *sqliteStore) SetResults(ctx context.Context, id string, r *Results, steps []TaskSummary, progress int) error {
	return s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		return tx.SetResults(ctx, id, r, steps, progress)
	})
}

// SetResults updates the results, step summaries and progress columns; the
// progress trigger writes the event of a raised progress.
func (tx *sqlTx) SetResults(ctx context.Context, id string, r *Results, steps []TaskSummary, progress int) error {
	cols, err := jsonColumns(r, steps)
	if err != nil {
		return fmt.Errorf("set results of %s: %w", id, err)
	}
	res, err := tx.exec(ctx, `UPDATE tasks SET results = ?1, workflow = COALESCE(?2, workflow),
		progress = MAX(progress, ?3) WHERE id = ?4`, cols[0], cols[1], min(max(progress, 0), 100), id)
	if err != nil {
		return fmt.Errorf("set results of %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set results of %s: %w", id, ErrNotFound)
	}
	return nil
}
