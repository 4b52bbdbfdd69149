package spool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// CreateTasks stores tasks in one transaction.
func (s *sqliteStore) CreateTasks(ctx context.Context, tasks []*Task) (out []*Task, err error) {
	op := &writeOp{ctx: ctx, fn: func(ctx context.Context, tx *sqlTx) error {
		out, err = tx.CreateTasks(ctx, tasks)
		return err
	}}
	if len(tasks) == 1 && tasks[0].IdempotencyKey == "" && tasks[0].FileID == "" {
		// One INSERT, which may share a statement with other such creates
		// in the batch; either way the task comes back as it is.
		op.oneStatement, op.create, out = true, tasks[0], tasks
	}
	err = s.w.submit(op)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateTasks inserts tasks; the insert trigger writes their events. Tasks
// without an idempotency key go in multi-row INSERTs: one statement per
// row was most of CreateMany's cost (binding, and the statement journal
// SQLite keeps for each statement that fires triggers).
func (tx *sqlTx) CreateTasks(ctx context.Context, tasks []*Task) ([]*Task, error) {
	var checked map[string]bool // a workflow's steps share one input
	for _, t := range tasks {
		if t.FileID == "" || checked[t.FileID] {
			continue
		}
		if checked == nil {
			checked = map[string]bool{}
		}
		checked[t.FileID] = true
		// In the transaction: a Delete that removed the file since the
		// caller looked it up must not leave a task without its input.
		st, err := tx.stmt(ctx, `SELECT 1 FROM files WHERE id = ?`)
		if err != nil {
			return nil, fmt.Errorf("create task: %w", err)
		}
		var one int
		switch err := st.QueryRowContext(ctx, t.FileID).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("create task: input file %s: %w", t.FileID, ErrNotFound)
		case err != nil:
			return nil, fmt.Errorf("create task: %w", err)
		}
	}
	out := make([]*Task, len(tasks))
	var plain []*Task
	for i, t := range tasks {
		if t.IdempotencyKey == "" {
			out[i] = t
			plain = append(plain, t)
			continue
		}
		// Earlier rows first: a key repeated in the batch finds its first
		// task.
		if err := tx.insert(ctx, plain); err != nil {
			return nil, err
		}
		plain = plain[:0]
		st, err := tx.stmt(ctx, selectByIdempotencyKey)
		if err != nil {
			return nil, fmt.Errorf("create task: %w", err)
		}
		prev, err := scanReadable(st.QueryRowContext(ctx, t.IdempotencyKey))
		if err == nil {
			// Refused here, in the transaction, so that a batch with such
			// a request stores none of its tasks.
			if f := requestDiff(prev, t); f != "" {
				return nil, &storeMismatch{index: i, err: keyMismatch(t.IdempotencyKey, f)}
			}
			out[i] = prev
			continue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("create task: %w", err)
		}
		if err := tx.insert(ctx, []*Task{t}); err != nil {
			return nil, err
		}
		out[i] = t
	}
	if err := tx.insert(ctx, plain); err != nil {
		return nil, err
	}
	return out, nil
}

// insertSizes are the row counts of the multi-row INSERTs, largest first: a
// batch is cut into these so that few statements are ever prepared.
var insertSizes = [...]int{64, 16, 8, 4, 2, 1}

// rowShape is one form of the tasks INSERT: its columns, its statements
// for 1 to 64 rows, and how a task becomes a row's values.
type rowShape struct {
	cols int
	rows [65]string
	args func(args []any, t *Task) ([]any, error)
}

func newRowShape(cols []string, args func([]any, *Task) ([]any, error)) *rowShape {
	sh := &rowShape{cols: len(cols), args: args}
	row := "(" + strings.Repeat("?, ", len(cols)-1) + "?)"
	head := "INSERT INTO tasks (" + strings.Join(cols, ", ") + ") VALUES " + row
	for n := 1; n < len(sh.rows); n++ {
		sh.rows[n] = head + strings.Repeat(", "+row, n-1)
	}
	return sh
}

// fullRow binds every column; leanRow only those a new task usually sets,
// the rest taking their defaults: a Create binds 15 values, not 25.
var (
	fullRow = newRowShape(append(strings.Fields(strings.ReplaceAll(taskCols, ",", " ")), "ref", "folder", "due"),
		func(args []any, t *Task) ([]any, error) {
			cols, err := jsonColumns(t.Input, t.Options, t.Output, t.Workflow, t.Results, t.Steps)
			if err != nil {
				return nil, err
			}
			refOpt, _ := t.Options["ref"].(string)
			folderOpt, _ := t.Options["folder"].(string)
			return append(args, t.ID, t.Kind, t.Status, t.Progress, cols[0], cols[1],
				cols[2], t.Error, t.CreatedBy, nullString(t.ParentID), cols[3], cols[4], cols[5],
				t.URL, t.FileID, t.WebhookURL, nullString(t.IdempotencyKey), unixNano(t.RunAt),
				t.Attempt, t.MaxAttempts, t.Created.UnixNano(), t.Updated.UnixNano(), t.Step, refOpt, folderOpt, due(t)), nil
		})
	leanRow = newRowShape([]string{"id", "kind", "status", "input", "options", "created_by", "url",
		"file_id", "webhook_url", "max_attempts", "created", "updated", "ref", "folder", "due"},
		func(args []any, t *Task) ([]any, error) {
			cols, err := jsonColumns(t.Input, t.Options)
			if err != nil {
				return nil, err
			}
			refOpt, _ := t.Options["ref"].(string)
			folderOpt, _ := t.Options["folder"].(string)
			return append(args, t.ID, t.Kind, t.Status, cols[0], cols[1], t.CreatedBy, t.URL,
				t.FileID, t.WebhookURL, t.MaxAttempts, t.Created.UnixNano(), t.Updated.UnixNano(),
				refOpt, folderOpt, due(t)), nil
		})
)

// shapeOf returns the lean shape when every task fits it.
func shapeOf(tasks []*Task) *rowShape {
	for _, t := range tasks {
		if t.Progress != 0 || len(t.Output) != 0 || t.Error != "" || t.ParentID != "" ||
			len(t.Workflow) != 0 || t.Results != nil || len(t.Steps) != 0 || t.Step != "" || t.IdempotencyKey != "" ||
			!t.RunAt.IsZero() || t.Attempt != 0 {
			return fullRow
		}
	}
	return leanRow
}

// jsonColumns encodes values for JSON columns (see jsonColumn).
func jsonColumns(vs ...any) ([]any, error) {
	out := make([]any, len(vs))
	for i, v := range vs {
		c, err := jsonColumn(v)
		if err != nil {
			return nil, fmt.Errorf("create task: encode: %w", err)
		}
		out[i] = c
	}
	return out, nil
}

// due is when a new task becomes runnable: now if pending, at its run_at
// if waiting on a time, never (NULL) otherwise.
func due(t *Task) any {
	switch t.Status {
	case StatusPending:
		return t.Created.UnixNano()
	case StatusWaiting:
		if !t.RunAt.IsZero() {
			return t.RunAt.UnixNano()
		}
	}
	return nil
}

// insertExact inserts up to 64 tasks with one statement, which either
// inserts them all or none.
func (tx *sqlTx) insertExact(ctx context.Context, tasks []*Task) error {
	return tx.insertRows(ctx, tasks, make([]any, 0, len(tasks)*fullRow.cols))
}

// insert inserts tasks in statements of insertSizes rows.
func (tx *sqlTx) insert(ctx context.Context, tasks []*Task) error {
	args := make([]any, 0, min(len(tasks), insertSizes[0])*fullRow.cols)
	for _, n := range insertSizes {
		for len(tasks) >= n {
			if err := tx.insertRows(ctx, tasks[:n], args); err != nil {
				return err
			}
			tasks = tasks[n:]
		}
	}
	return nil
}

// insertRows inserts up to 64 tasks with one statement, building its
// arguments in args' storage.
func (tx *sqlTx) insertRows(ctx context.Context, tasks []*Task, args []any) error {
	sh := shapeOf(tasks)
	args = args[:0]
	for _, t := range tasks {
		var err error
		if args, err = sh.args(args, t); err != nil {
			return err
		}
	}
	if _, err := tx.exec(ctx, sh.rows[len(tasks)], args...); err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	return nil
}
