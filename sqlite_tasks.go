package spool

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	}{{input, &t.Input}, {options, &t.Options}, {workflow, &t.Workflow}, {results, &t.Results}, {steps, &t.Steps}} {
		if c.s.Valid {
			if err := json.Unmarshal([]byte(c.s.String), c.dst); err != nil {
				return nil, fmt.Errorf("decode task %s: %w", t.ID, err)
			}
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

// CreateTasks stores tasks in one transaction.
func (s *sqliteStore) CreateTasks(ctx context.Context, tasks []*Task) (out []*Task, err error) {
	op := &writeOp{ctx: ctx, fn: func(ctx context.Context, tx *sqlTx) error {
		out, err = tx.CreateTasks(ctx, tasks)
		return err
	}}
	if len(tasks) == 1 && tasks[0].IdempotencyKey == "" {
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

// Apply makes one change in its own transaction, possibly committed
// together with concurrent ones.
func (s *sqliteStore) Apply(ctx context.Context, ch *Change) (t *Task, err error) {
	op := &writeOp{ctx: ctx, fn: func(ctx context.Context, tx *sqlTx) error {
		t, err = tx.Apply(ctx, ch)
		return err
	}, oneStatement: ch.Hook == nil}
	if mergeable(ch) {
		op.change = ch
	}
	err = s.w.submit(op)
	return t, err
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

// CreateTasks inserts tasks; the insert trigger writes their events. Tasks
// without an idempotency key go in multi-row INSERTs: one statement per
// row was most of CreateMany's cost (binding, and the statement journal
// SQLite keeps for each statement that fires triggers).
func (tx *sqlTx) CreateTasks(ctx context.Context, tasks []*Task) ([]*Task, error) {
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
		prev, err := scanTask(st.QueryRowContext(ctx, t.IdempotencyKey))
		if err == nil {
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
var insertSizes = [...]int{64, 16, 4, 1}

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
				t.Attempt, t.MaxAttempts, t.Created.UnixNano(), t.Updated.UnixNano(), refOpt, folderOpt, due(t)), nil
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
			len(t.Workflow) != 0 || t.Results != nil || len(t.Steps) != 0 || t.IdempotencyKey != "" ||
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

// applyQueries holds the conditional update of every (target status,
// owner condition, whole row returned) combination, built once rather than
// on every completion.
var applyQueries = func() map[applyKey]string {
	m := map[applyKey]string{}
	for _, to := range statuses {
		for _, owner := range []bool{false, true} {
			for _, full := range []bool{false, true} {
				m[applyKey{to, owner, full}] = buildApplyQuery(to, owner, full)
			}
		}
	}
	return m
}()

type applyKey struct {
	to          Status
	owner, full bool
}

// applyQuery returns the conditional update for a change to status to,
// returning the whole row when full.
func applyQuery(to Status, owner, full bool) string { return applyQueries[applyKey{to, owner, full}] }

func buildApplyQuery(to Status, owner, full bool) string {
	var b strings.Builder
	b.WriteString(`UPDATE tasks SET status = ?1, progress = MAX(progress, ?2),
		output = COALESCE(?3, output), error = ?4, due = ?5, attempt = attempt + ?6,
		lease_owner = NULL, lease_until = NULL, updated = ?7, input = COALESCE(?10, input)
		WHERE id = ?8 AND status IN (`)
	for i, s := range TransitionSources(to) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("'" + string(s) + "'")
	}
	b.WriteString(")")
	if owner {
		b.WriteString(" AND lease_owner = ?9")
	} else {
		b.WriteString(" AND ?9 = ''")
	}
	b.WriteString(" AND (?11 = 0 OR attempt = ?11)")
	if full {
		b.WriteString(" RETURNING " + taskCols)
	}
	return b.String()
}

const applyProgress = `UPDATE tasks SET progress = ?1, updated = ?2
	WHERE id = ?3 AND status = 'processing' AND progress < ?1 AND (?4 = '' OR lease_owner = ?4)
		AND (?5 = 0 OR attempt = ?5)
	RETURNING ` + taskCols

// Apply makes the change with one conditional update; the triggers write
// its event and counts.
func (tx *sqlTx) Apply(ctx context.Context, ch *Change) (*Task, error) {
	now := ch.Time
	if now.IsZero() {
		now = time.Now()
	}
	var rows *sql.Rows
	var err error
	if ch.To == "" {
		rows, err = tx.query(ctx, applyProgress, min(max(ch.Progress, 0), 100), now.UnixNano(), ch.ID, ch.Owner, ch.AtAttempt)
	} else {
		var args []any
		if args, err = changeArgs(ch, now); err != nil {
			return nil, err
		}
		if ch.NoResult && ch.Hook == nil {
			// Nothing to read back: the count of changed rows is the answer.
			res, err := tx.exec(ctx, applyQuery(ch.To, ch.Owner != "", false), args...)
			if err != nil {
				return nil, fmt.Errorf("apply to %s: %w", ch.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return tx.refused(ctx, ch)
			}
			return nil, nil
		}
		rows, err = tx.query(ctx, applyQuery(ch.To, ch.Owner != "", true), args...)
	}
	if err != nil {
		return nil, fmt.Errorf("apply to %s: %w", ch.ID, err)
	}
	var t *Task
	found := false
	if rows.Next() {
		found = true
		t, err = scanTask(rows)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("apply to %s: %w", ch.ID, err)
	}
	if !found {
		return tx.refused(ctx, ch)
	}
	if ch.Hook != nil {
		if err := ch.Hook(ctx, tx, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// changeArgs returns the parameters ?1 to ?11 of a status change's update.
func changeArgs(ch *Change, now time.Time) ([]any, error) {
	if !ch.To.Valid() {
		return nil, fmt.Errorf("apply: %q is not a status: %w", ch.To, ErrInvalidTransition)
	}
	progress, errMsg := min(max(ch.Progress, 0), 100), ch.Error
	var due any
	switch ch.To {
	case StatusPending:
		due = now.UnixNano()
		if !ch.Due.IsZero() {
			due = ch.Due.UnixNano()
		}
		errMsg = ""
	case StatusWaiting:
		if !ch.Due.IsZero() {
			due = ch.Due.UnixNano()
		}
	case StatusCompleted:
		progress, errMsg = 100, ""
	}
	out, err := jsonColumn(ch.Output)
	if err != nil {
		return nil, fmt.Errorf("apply: encode output: %w", err)
	}
	in, err := jsonColumn(ch.Input)
	if err != nil {
		return nil, fmt.Errorf("apply: encode input: %w", err)
	}
	return []any{ch.To, progress, out, errMsg, due, ch.Attempt, now.UnixNano(), ch.ID, ch.Owner, in, ch.AtAttempt}, nil
}

// mergeable reports whether a change can share one UPDATE with others: the
// outcome of a held task (the drain's completions), which reads nothing
// back and runs no hook.
func mergeable(ch *Change) bool {
	return ch.Owner != "" && ch.Hook == nil && ch.NoResult && ch.Input == nil &&
		ch.To.Valid() && ch.To != StatusProcessing && slices.Contains(TransitionSources(ch.To), StatusProcessing)
}

// mergedQueries[n] applies n changes, for n up to maxMerged. Each VALUES
// row is status, progress, output, error, due, attempt delta, updated, id,
// owner, at-attempt (column1 to column10). A held task is processing, and
// only its holder's change applies.
var mergedQueries = func() (q [maxMerged + 1]string) {
	row := "(" + strings.Repeat("?, ", 9) + "?)"
	for n := 1; n < len(q); n++ {
		q[n] = `UPDATE tasks SET status = v.column1, progress = MAX(tasks.progress, v.column2),
		output = COALESCE(v.column3, tasks.output), error = v.column4, due = v.column5,
		attempt = tasks.attempt + v.column6, lease_owner = NULL, lease_until = NULL, updated = v.column7
		FROM (VALUES ` + row + strings.Repeat(", "+row, n-1) + `) AS v
		WHERE tasks.id = v.column8 AND tasks.status = 'processing' AND tasks.lease_owner = v.column9
			AND (v.column10 = 0 OR tasks.attempt = v.column10)
		RETURNING tasks.id`
	}
	return q
}()

// applyMerged makes up to maxMerged mergeable changes, each to a different
// task, with one statement, and returns each change's error: nil, or the
// reason refused finds for a change that matched no row, as from Apply.
// An error of its own means the statement made no change.
func (tx *sqlTx) applyMerged(ctx context.Context, chs []*Change) ([]error, error) {
	now := time.Now()
	args := make([]any, 0, 10*len(chs))
	for _, ch := range chs {
		at := ch.Time
		if at.IsZero() {
			at = now
		}
		a, err := changeArgs(ch, at)
		if err != nil {
			return nil, err
		}
		// changeArgs' order, less the input (?10).
		args = append(args, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[10])
	}
	rows, err := tx.query(ctx, mergedQueries[len(chs)], args...)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	applied := make(map[string]bool, len(chs))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("apply: %w", err)
		}
		applied[id] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	errs := make([]error, len(chs))
	for i, ch := range chs {
		if !applied[ch.ID] {
			_, errs[i] = tx.refused(ctx, ch)
		}
	}
	return errs, nil
}

// refused explains why a change matched no row.
func (tx *sqlTx) refused(ctx context.Context, ch *Change) (*Task, error) {
	cur, err := tx.GetTask(ctx, ch.ID)
	if err != nil {
		return nil, err
	}
	switch {
	case ch.To == "" && cur.Status == StatusProcessing && cur.Progress >= ch.Progress:
		return cur, nil // progress already as high: nothing to do
	case ch.Owner != "" && cur.Status == StatusProcessing,
		ch.AtAttempt != 0 && cur.Attempt != ch.AtAttempt:
		return nil, fmt.Errorf("task %s is held by another claim: %w", ch.ID, ErrInvalidTransition)
	case ch.To == "":
		return nil, fmt.Errorf("task %s is %s, not processing: %w", ch.ID, cur.Status, ErrInvalidTransition)
	}
	return nil, fmt.Errorf("task %s is %s, cannot become %s: %w", ch.ID, cur.Status, ch.To, ErrInvalidTransition)
}

const claimByID = `UPDATE tasks SET status = 'processing', attempt = attempt + 1,
	lease_owner = ?1, lease_until = ?2, due = NULL, updated = ?3
	WHERE id = ?4 AND status = 'pending'
	RETURNING ` + taskCols

// CreateAndClaim inserts a task and claims it in one transaction.
func (s *sqliteStore) CreateAndClaim(ctx context.Context, t *Task, p *ClaimParams) (out *Task, err error) {
	err = s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		got, err := tx.CreateTasks(ctx, []*Task{t})
		if err != nil {
			return err
		}
		if out = got[0]; out != t || t.Status != StatusPending {
			return nil // an earlier task with the same idempotency key, or not runnable
		}
		rows, err := tx.query(ctx, claimByID, p.Owner, p.LeaseUntil.UnixNano(), p.Now.UnixNano(), t.ID)
		if err != nil {
			return fmt.Errorf("claim task: %w", err)
		}
		defer rows.Close()
		if rows.Next() {
			if out, err = scanTask(rows); err != nil {
				return fmt.Errorf("claim task: %w", err)
			}
		}
		return rows.Err()
	})
	return out, err
}

// maxClaimArms is the most kinds claimQuery merges one by one (SQLite
// allows 500 arms in a compound SELECT).
const maxClaimArms = 64

// claimQuery claims from one kind or several, oldest due first across
// them; the kinds are parameters ?5 onwards. Each kind's oldest entries are
// read from the runnable index (kind, due, id) in order, so a backlog of
// another kind is never walked; several kinds' are merged and sorted, at
// most limit rows each. LIMIT takes its parameter through a subquery: a
// bare parameter there makes SQLite prepare the statement again whenever
// it is bound (the planner reads the value), which was 7% of the drain.
func claimQuery(kinds int) string {
	if kinds > maxClaimArms {
		// Past SQLite's limit on a compound SELECT's arms: one walk of the
		// runnable entries of every kind, sorted.
		return `UPDATE tasks SET status = 'processing', attempt = attempt + 1,
	lease_owner = ?1, lease_until = ?2, due = NULL, updated = ?3
	WHERE rowid IN (SELECT rowid FROM tasks INDEXED BY tasks_due
		WHERE kind IN (?5` + strings.Repeat(", ?", kinds-1) + `) AND due IS NOT NULL AND due <= ?3
		ORDER BY due, id LIMIT (SELECT ?4))
	RETURNING ` + taskCols
	}
	// The index entries hold the rowid: the update finds each row with
	// one search, not two through the id index.
	pick := func(kind string) string {
		return `SELECT rowid AS rid, due, id FROM tasks INDEXED BY tasks_due
		WHERE kind = ` + kind + ` AND due IS NOT NULL AND due <= ?3 ORDER BY due, id LIMIT (SELECT ?4)`
	}
	sel := pick("?5")
	if kinds > 1 {
		arms := make([]string, kinds)
		for i := range arms {
			arms[i] = "SELECT * FROM (" + pick(fmt.Sprintf("?%d", 5+i)) + ")"
		}
		sel = "SELECT rid, due, id FROM (" + strings.Join(arms, " UNION ALL ") + ") ORDER BY due, id LIMIT (SELECT ?4)"
	}
	return `UPDATE tasks SET status = 'processing', attempt = attempt + 1,
	lease_owner = ?1, lease_until = ?2, due = NULL, updated = ?3
	WHERE rowid IN (SELECT rid FROM (` + sel + `))
	RETURNING ` + taskCols
}

// ClaimTasks claims every batch in one transaction.
func (s *sqliteStore) ClaimTasks(ctx context.Context, p *ClaimParams) ([]*Task, error) {
	var out []*Task
	err := s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		out = out[:0]
		for _, b := range p.Batches {
			if b.Limit <= 0 || len(b.Kinds) == 0 {
				continue
			}
			args := []any{p.Owner, p.LeaseUntil.UnixNano(), p.Now.UnixNano(), b.Limit}
			for i, k := range b.Kinds {
				if !slices.Contains(b.Kinds[:i], k) { // a kind twice would count twice
					args = append(args, k)
				}
			}
			rows, err := tx.query(ctx, claimQuery(len(args)-4), args...)
			if err != nil {
				return fmt.Errorf("claim tasks: %w", err)
			}
			for rows.Next() {
				t, err := scanTask(rows)
				if err != nil {
					rows.Close()
					return fmt.Errorf("claim tasks: %w", err)
				}
				out = append(out, t)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return fmt.Errorf("claim tasks: %w", err)
			}
		}
		return nil
	})
	return out, err
}

// NextDue looks up the earliest due time of the kinds, one index seek
// each.
func (s *sqliteStore) NextDue(ctx context.Context, kinds []string) (time.Time, error) {
	var next int64
	for _, k := range kinds {
		var due int64
		err := s.queryRow(ctx, `SELECT due FROM tasks INDEXED BY tasks_due
			WHERE kind = ? AND due IS NOT NULL ORDER BY due LIMIT 1`, k).Scan(&due)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("next due: %w", err)
		}
		if next == 0 || due < next {
			next = due
		}
	}
	if next == 0 {
		return time.Time{}, nil
	}
	return time.Unix(0, next), nil
}

// ListTasks pages through tasks by id.
func (s *sqliteStore) ListTasks(ctx context.Context, p *ListParams) (*TaskPage, error) {
	var lp ListParams
	if p != nil {
		lp = *p
	}
	q, pageArgs, filter, args := listQuery(&lp)
	offset := 0
	if lp.After == "" && lp.Page > 1 {
		offset = (lp.Page - 1) * lp.Limit
	}
	rows, err := s.query(ctx, q, append(pageArgs, lp.Limit+1, offset)...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	out := &TaskPage{Tasks: make([]*Task, 0, lp.Limit)}
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		out.Tasks = append(out.Tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	if len(out.Tasks) > lp.Limit {
		out.Tasks = out.Tasks[:lp.Limit]
		out.Next = out.Tasks[lp.Limit-1].ID
	}
	if out.Total, err = s.count(ctx, lp, filter, args); err != nil {
		return nil, err
	}
	return out, nil
}

// listQuery builds a list page's query and its arguments (less the limit
// and offset), and the filter alone with its arguments, for the count.
func listQuery(lp *ListParams) (q string, pageArgs []any, filter string, args []any) {
	var where []string
	// The literals let SQLite use the partial indexes on status, ref and
	// folder: a bound value alone does not imply their conditions.
	status := "status = ? AND status != 'completed'"
	if lp.Status == StatusCompleted {
		status = "status = ?" // not in the index: the walk by id finds them
	}
	for _, f := range []struct{ cond, v string }{{status, string(lp.Status)}, {"kind = ?", lp.Kind},
		{"parent_id = ?", lp.ParentID}, {"ref = ? AND ref != ''", lp.Ref}, {"folder = ? AND folder != ''", lp.Folder}} {
		if f.v != "" {
			where = append(where, f.cond)
			args = append(args, f.v)
		}
	}
	filter = strings.Join(where, " AND ")
	order, cmp := "DESC", "<"
	if lp.Oldest {
		order, cmp = "ASC", ">"
	}
	page := append([]string(nil), where...)
	pageArgs = append([]any(nil), args...)
	if lp.After != "" {
		page = append(page, "id "+cmp+" ?")
		pageArgs = append(pageArgs, lp.After)
	}
	q = "SELECT " + taskCols + " FROM tasks"
	if len(page) > 0 {
		q += " WHERE " + strings.Join(page, " AND ")
	}
	q += " ORDER BY id " + order + " LIMIT (SELECT ?) OFFSET (SELECT ?)" // see claimQuery
	return q, pageArgs, filter, args
}

// count totals a list's matches, from the trigger-kept counts when the
// filters allow, so that a page stays cheap over millions of rows.
func (s *sqliteStore) count(ctx context.Context, p ListParams, filter string, args []any) (int, error) {
	var q string
	switch {
	case p.ParentID != "" || p.Ref != "" || p.Folder != "":
		q = "SELECT COUNT(*) FROM tasks"
		if filter != "" {
			q += " WHERE " + filter
		}
	default:
		col := strings.Join(countCols, " + ")
		if p.Status != "" {
			if !p.Status.Valid() {
				return 0, nil
			}
			col = string(p.Status)
		}
		q = "SELECT COALESCE(SUM(" + col + "), 0) FROM kind_counts"
		args = nil
		if p.Kind != "" {
			q += " WHERE kind = ?"
			args = []any{p.Kind}
		}
	}
	var n int
	if err := s.queryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tasks: %w", err)
	}
	return n, nil
}

// countCols are kind_counts' columns, one per status, in statuses' order.
var countCols = func() []string {
	cols := make([]string, len(statuses))
	for i, st := range statuses {
		cols[i] = string(st)
	}
	return cols
}()

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
