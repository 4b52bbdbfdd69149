package spool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Apply makes one change in its own transaction, possibly committed
// together with concurrent ones.
func (s *sqliteStore) Apply(ctx context.Context, ch *Change) (t *Task, err error) {
	// Only a change that reads nothing back is one statement that cannot
	// fail after it ran: decoding the returned row can, and then the
	// change must be undone with a savepoint.
	op := &writeOp{ctx: ctx, fn: func(ctx context.Context, tx *sqlTx) error {
		t, err = tx.Apply(ctx, ch)
		return err
	}, oneStatement: ch.Hook == nil && ch.NoResult}
	if mergeable(ch) {
		op.change = ch
	}
	if err = s.w.submit(op); err != nil {
		return nil, err
	}
	return t, nil
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

const (
	applyProgressNoResult = `UPDATE tasks SET progress = ?1, updated = ?2
	WHERE id = ?3 AND status = 'processing' AND progress < ?1 AND (?4 = '' OR lease_owner = ?4)
		AND (?5 = 0 OR attempt = ?5)`
	applyProgress = applyProgressNoResult + ` RETURNING ` + taskCols
)

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
		args := []any{min(max(ch.Progress, 0), 100), now.UnixNano(), ch.ID, ch.Owner, ch.AtAttempt}
		if ch.NoResult {
			return tx.applyNoResult(ctx, ch, applyProgressNoResult, args)
		}
		rows, err = tx.query(ctx, applyProgress, args...)
	} else {
		var args []any
		if args, err = changeArgs(ch, now); err != nil {
			return nil, err
		}
		if ch.NoResult {
			return tx.applyNoResult(ctx, ch, applyQuery(ch.To, ch.Owner != "", false), args)
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
		t, err = scanReadable(rows)
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

// applyNoResult makes a change that reads nothing back: the count of
// changed rows is the answer.
func (tx *sqlTx) applyNoResult(ctx context.Context, ch *Change, query string, args []any) (*Task, error) {
	res, err := tx.exec(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("apply to %s: %w", ch.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return tx.refused(ctx, ch)
	}
	if ch.Hook != nil {
		if err := ch.Hook(ctx, tx, nil); err != nil {
			return nil, err
		}
	}
	return nil, nil
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
// back and runs no hook, or only a LateHook, run after the UPDATE. (Other
// hooks must run right after their own change: a workflow step's hook
// counts its siblings, and must not see a sibling completed whose own hook
// has not created its next steps yet.)
func mergeable(ch *Change) bool {
	return ch.Owner != "" && (ch.Hook == nil || ch.LateHook) && ch.NoResult && ch.Input == nil &&
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
