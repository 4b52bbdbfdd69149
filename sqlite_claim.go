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
		// The lease counts from now, inside the transaction: the wait for
		// the write lock must not eat into it.
		rows, err := tx.query(ctx, claimByID, p.Owner, time.Now().Add(p.Lease).UnixNano(), p.Now.UnixNano(), t.ID)
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

// ClaimTasks claims every batch in one transaction. A claimed row that
// cannot be decoded ends in error in the same transaction instead of
// being returned.
func (s *sqliteStore) ClaimTasks(ctx context.Context, p *ClaimParams) ([]*Task, error) {
	var out []*Task
	err := s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		out = out[:0]
		var bad []*decodeError
		// The lease counts from now, inside the transaction: the wait for
		// the write lock must not eat into it.
		leaseUntil := time.Now().Add(p.Lease).UnixNano()
		for _, b := range p.Batches {
			if b.Limit <= 0 || len(b.Kinds) == 0 {
				continue
			}
			args := []any{p.Owner, leaseUntil, p.Now.UnixNano(), b.Limit}
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
				var de *decodeError
				switch {
				case errors.As(err, &de):
					bad = append(bad, de)
				case err != nil:
					rows.Close()
					return fmt.Errorf("claim tasks: %w", err)
				default:
					out = append(out, t)
				}
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return fmt.Errorf("claim tasks: %w", err)
			}
		}
		for _, de := range bad {
			if err := quarantine(ctx, tx, de); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// quarantine ends a claimed task whose row cannot be decoded in error,
// with the reason: no handler could run it, and retrying cannot help.
func quarantine(ctx context.Context, tx *sqlTx, de *decodeError) error {
	_, err := tx.exec(ctx, `UPDATE tasks SET status = 'error', error = ?1, due = NULL,
		lease_owner = NULL, lease_until = NULL, updated = ?2 WHERE id = ?3 AND status = 'processing'`,
		"stored task cannot be read: "+de.Error(), time.Now().UnixNano(), de.id)
	if err != nil {
		return fmt.Errorf("claim tasks: quarantine %s: %w", de.id, err)
	}
	return nil
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
