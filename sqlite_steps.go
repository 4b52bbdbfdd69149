package spool

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
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

// verdictReader is implemented by a Tx that can read a workflow and its
// steps with only what a verdict (Engine.plan) needs when it creates no
// step: the workflow's status and step definitions; each step's status,
// progress, error, output, results, times, path and ref. Decoding whole
// tasks (inputs with their media details, options) was most of the cost
// of a workflow's last step. The engine reads whole tasks from any Tx
// without it, and whenever the verdict would create steps.
type verdictReader interface {
	verdictTasks(ctx context.Context, parentID string) (parent *Task, steps []*Task, err error)
}

var _ verdictReader = (*sqlTx)(nil)

const (
	selectVerdictParent = `SELECT id, kind, status, steps FROM tasks WHERE id = ?`
	// Options SQLite cannot read (undecodable, or nested deeper than its
	// 1,000 levels, which options may be) come whole, for Go to decode as
	// whole reads do.
	selectVerdictSteps = `SELECT id, kind, status, progress,
		CASE WHEN json_valid(options) THEN CASE WHEN json_type(options, '$.ref') = 'text'
			THEN json_extract(options, '$.ref') END END,
		CASE WHEN NOT json_valid(options) THEN options END, output, error,
		created_by, results, created, updated, step FROM tasks WHERE parent_id = ? ORDER BY id`
)

// verdictTasks reads a workflow and its steps for a verdict, inside the
// transaction. Undecodable JSON is left out, as readers do (scanReadable).
func (tx *sqlTx) verdictTasks(ctx context.Context, parentID string) (*Task, []*Task, error) {
	st, err := tx.stmt(ctx, selectVerdictParent)
	if err != nil {
		return nil, nil, fmt.Errorf("read workflow %s: %w", parentID, err)
	}
	parent := &Task{}
	var defs sql.NullString
	err = st.QueryRowContext(ctx, parentID).Scan(&parent.ID, &parent.Kind, &parent.Status, &defs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("task %s: %w", parentID, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read workflow %s: %w", parentID, err)
	}
	if defs.Valid {
		// Of a step's definition the verdict reads its kind, ref and next
		// steps: decoding its options too (Step.UnmarshalJSON) took half
		// the time of this read.
		var shapes []stepShape
		_ = json.Unmarshal([]byte(defs.String), &shapes)
		parent.Steps = stepsOf(shapes)
	}
	rows, err := tx.query(ctx, selectVerdictSteps, parentID)
	if err != nil {
		return nil, nil, fmt.Errorf("read steps of %s: %w", parentID, err)
	}
	defer rows.Close()
	var steps []*Task
	for rows.Next() {
		var (
			t                          = &Task{ParentID: parentID}
			ref, opts, output, results sql.NullString
			created, updated           int64
		)
		if err := rows.Scan(&t.ID, &t.Kind, &t.Status, &t.Progress, &ref, &opts, &output, &t.Error,
			&t.CreatedBy, &results, &created, &updated, &t.Step); err != nil {
			return nil, nil, fmt.Errorf("read steps of %s: %w", parentID, err)
		}
		if opts.Valid {
			all, _ := decodeOptions([]byte(opts.String))
			ref.String, ref.Valid = all["ref"].(string)
		}
		if ref.Valid {
			t.Options = map[string]any{"ref": ref.String}
		}
		if output.Valid && json.Valid([]byte(output.String)) {
			t.Output = json.RawMessage(output.String)
		}
		if results.Valid {
			_ = json.Unmarshal([]byte(results.String), &t.Results)
		}
		t.Created, t.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
		steps = append(steps, t)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read steps of %s: %w", parentID, err)
	}
	return parent, steps, nil
}

// stepShape is a stored step definition without its options.
type stepShape struct {
	Kind string      `json:"kind"`
	Ref  string      `json:"ref"`
	Next []stepShape `json:"next"`
}

// UnmarshalJSON decodes a step definition as Step.UnmarshalJSON does,
// failing where it fails, but skips its options. The fields are matched by
// their exact names: options share the definition's object, and
// encoding/json would match an option "Ref", "Next" or "\u212aind"
// (Kelvin sign) to a struct field, giving a ref, next steps or kind that
// whole reads do not see.
func (s *stepShape) UnmarshalJSON(b []byte) error {
	// decodeObject's checks, cheaper: b is one value of a valid document.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	if fields == nil {
		return errors.New("a step is null")
	}
	var out stepShape
	var url string
	for _, f := range [...]struct {
		name string
		dst  *string
	}{{"kind", &out.Kind}, {"ref", &out.Ref}, {"url", &url}} {
		if raw, ok := fields[f.name]; ok {
			if err := json.Unmarshal(raw, f.dst); err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
		}
	}
	if raw, ok := fields["next"]; ok && string(raw) != "null" {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("next: %w", err)
		}
		out.Next = make([]stepShape, len(list))
		for i, b := range list {
			if err := out.Next[i].UnmarshalJSON(b); err != nil {
				return err
			}
		}
	}
	*s = out
	return nil
}

func stepsOf(shapes []stepShape) []Step {
	if shapes == nil {
		return nil
	}
	steps := make([]Step, len(shapes))
	for i, sh := range shapes {
		steps[i] = Step{Kind: sh.Kind, Ref: sh.Ref, Next: stepsOf(sh.Next)}
	}
	return steps
}

var _ stalledFinder = (*sqliteStore)(nil)

// selectStalled seeks waiting or ready tasks by the status index and
// probes each one's steps by the parent index. The planner, without
// statistics, preferred the kind index, which holds every workflow ever
// run; the status index (partial: no completed tasks) holds only those
// this status can find.
const selectStalled = `SELECT w.id FROM tasks w INDEXED BY tasks_status
	WHERE w.status = ?1 AND w.status != 'completed' AND w.id > ?2 AND w.kind = 'workflow'
	AND EXISTS (SELECT 1 FROM tasks s WHERE s.parent_id = w.id)
	AND NOT EXISTS (SELECT 1 FROM tasks s WHERE s.parent_id = w.id AND s.status NOT IN ` + finishedStatuses + `)
	ORDER BY w.id LIMIT ?3`

// stalledWorkflows lists, oldest first, the workflows of a status after
// the id after whose steps have all finished.
func (s *sqliteStore) stalledWorkflows(ctx context.Context, status Status, after string, limit int) ([]string, error) {
	rows, err := s.query(ctx, selectStalled, string(status), after, limit)
	if err != nil {
		return nil, fmt.Errorf("find stalled workflows: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find stalled workflows: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find stalled workflows: %w", err)
	}
	return ids, nil
}
