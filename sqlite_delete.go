package spool

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// finishedStatuses is the SQL list of final statuses.
const finishedStatuses = `('completed', 'failed', 'error', 'cancelled')`

// noUnfinishedSteps is true of a task (the outer query's tasks row) none of
// whose workflow steps is still to finish: deleting a parent deletes its
// steps (ON DELETE CASCADE), and a running step must not vanish.
const noUnfinishedSteps = `NOT EXISTS (SELECT 1 FROM tasks step WHERE step.parent_id = tasks.id
	AND step.parent_id IS NOT NULL AND step.status NOT IN ` + finishedStatuses + `)`

// deletable tells whether a task can be deleted: finished, its steps too,
// and, for a step, its workflow: a running workflow would start a deleted
// step again, its predecessor having completed.
const deletable = `SELECT status IN ` + finishedStatuses + ` AND ` + noUnfinishedSteps + `
	AND (parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM tasks parent WHERE parent.id = tasks.parent_id
		AND parent.status NOT IN ` + finishedStatuses + `)) FROM tasks WHERE id = ?`

// DeleteTask deletes a finished task with its workflow steps and the files
// they produced that no remaining task uses. Its events stay until pruned,
// but are no longer read: the event reader joins the task row.
func (s *sqliteStore) DeleteTask(ctx context.Context, id string) ([]*File, error) {
	var files []*File
	err := s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		st, err := tx.stmt(ctx, deletable)
		if err != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
		var ok bool
		err = st.QueryRowContext(ctx, id).Scan(&ok)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("task %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
		if !ok {
			cur, err := tx.GetTask(ctx, id)
			if err != nil {
				return err
			}
			if cur.Status.Terminal() && cur.ParentID != "" {
				return fmt.Errorf("delete task %s: it is a step of workflow %s, which has not finished: %w", id, cur.ParentID, ErrInvalidTransition)
			}
			if cur.Status.Terminal() {
				return fmt.Errorf("delete task %s: some of its workflow steps have not finished: %w", id, ErrInvalidTransition)
			}
			return fmt.Errorf("delete task %s: task is %s, only a finished task can be deleted: %w",
				id, cur.Status, ErrInvalidTransition)
		}
		_, files, err = tx.deleteTasks(ctx, []string{id})
		if err != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

// selectFinished reads the oldest finished top-level tasks of a status
// other than completed: the status index holds them by id, and a task that
// finished before the cutoff (?2) was created before it, so its id sorts
// below ?4, the cutoff's. Only tasks created before the cutoff and still
// kept are walked past.
const selectFinished = `SELECT id FROM tasks
	WHERE status = ?1 AND status != 'completed' AND id < ?4 AND updated < ?2 AND parent_id IS NULL
		AND ` + noUnfinishedSteps + `
	ORDER BY id LIMIT (SELECT ?3)`

// selectCompleted is selectFinished for completed tasks, which the status
// index leaves out: it walks the ids created before the cutoff.
const selectCompleted = `SELECT id FROM tasks
	WHERE id < ?4 AND status = ?1 AND updated < ?2 AND parent_id IS NULL AND ` + noUnfinishedSteps + `
	ORDER BY id LIMIT (SELECT ?3)`

// recheckFinished keeps, of the ids in the JSON array ?1, those that still
// qualify (picked on a read connection, they may have changed since).
const recheckFinished = `SELECT id FROM tasks
	WHERE id IN (SELECT value FROM json_each(?1)) AND status = ?2 AND updated < ?3 AND parent_id IS NULL
		AND ` + noUnfinishedSteps

// DeleteFinished deletes, in one transaction, up to limit top-level tasks
// of a final status that finished before before, as DeleteTask does. The
// tasks are picked on a read connection, so that walking past old tasks
// that are kept never holds up the writer, and checked again in the write.
func (s *sqliteStore) DeleteFinished(ctx context.Context, status Status, before time.Time, limit int) (int, []*File, error) {
	if !status.Terminal() {
		return 0, nil, invalid("status", "%q is not a final status", status)
	}
	if limit <= 0 {
		return 0, nil, invalid("limit", "must be 1 or more")
	}
	q := selectFinished
	if status == StatusCompleted {
		q = selectCompleted
	}
	rows, err := s.query(ctx, q, status, before.UnixNano(), limit, idBefore("task_", before))
	if err != nil {
		return 0, nil, fmt.Errorf("delete finished: %w", err)
	}
	picked, err := scanIDs(rows)
	if err != nil || len(picked) == 0 {
		return 0, nil, err
	}
	list, err := json.Marshal(picked)
	if err != nil {
		return 0, nil, fmt.Errorf("delete finished: %w", err)
	}
	var (
		n     int
		files []*File
	)
	err = s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		rows, err := tx.query(ctx, recheckFinished, string(list), status, before.UnixNano())
		if err != nil {
			return fmt.Errorf("delete finished: %w", err)
		}
		ids, err := scanIDs(rows)
		if err != nil {
			return err
		}
		n, files, err = tx.deleteTasks(ctx, ids)
		if err != nil {
			return fmt.Errorf("delete finished: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return n, files, nil
}

// scanIDs reads and closes rows of one id each.
func scanIDs(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read ids: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// deleteTasks deletes tasks with their workflow steps, then the files they
// produced, or took as input from a producer already gone, that no
// remaining task uses. It returns how many of the tasks it deleted and
// the file records it deleted.
func (tx *sqlTx) deleteTasks(ctx context.Context, ids []string) (int, []*File, error) {
	if len(ids) == 0 {
		return 0, nil, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return 0, nil, err
	}
	owned, err := tx.ownedFiles(ctx, string(list))
	if err != nil {
		return 0, nil, err
	}
	res, err := tx.exec(ctx, `DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return 0, nil, err
	}
	n, _ := res.RowsAffected()
	files, err := tx.deleteUnused(ctx, owned)
	return int(n), files, err
}

// ownedFilesQuery selects the file records that deleting the tasks whose
// ids are in the JSON array ?1 may leave unused: those the tasks and their
// workflow steps (which ON DELETE CASCADE deletes with them) produced, and
// those they took as file_id input whose producer is gone (kept, when their
// producer was deleted, only for them). Uploads (no producer) are the
// user's and never selected.
const ownedFilesQuery = `WITH RECURSIVE doomed (id) AS (
		SELECT value FROM json_each(?1)
		UNION SELECT tasks.id FROM tasks JOIN doomed ON tasks.parent_id = doomed.id
			WHERE tasks.parent_id IS NOT NULL)
	SELECT data, storage_key, task_id FROM files
	WHERE task_id IN (SELECT id FROM doomed) AND task_id != ''
	UNION ALL -- no file is in both: a doomed task still exists here
	SELECT data, storage_key, task_id FROM files
	WHERE id IN (SELECT file_id FROM tasks WHERE id IN (SELECT id FROM doomed) AND file_id != '')
		AND task_id != '' AND task_id NOT IN (SELECT id FROM tasks)`

// ownedFiles returns the file records that ownedFilesQuery selects.
func (tx *sqlTx) ownedFiles(ctx context.Context, ids string) ([]*File, error) {
	rows, err := tx.query(ctx, ownedFilesQuery, ids)
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	return scanFiles(rows)
}

// deleteFileIfUnused deletes a file record unless a task takes it as input:
// by file_id, or by an input naming it otherwise (see tasks_input_file).
const deleteFileIfUnused = `DELETE FROM files WHERE id = ?1
	AND NOT EXISTS (SELECT 1 FROM tasks WHERE file_id = ?1 AND file_id != '')
	AND NOT EXISTS (SELECT 1 FROM tasks WHERE json_extract(input, '$.id') = ?1
		AND input IS NOT NULL AND file_id = '' AND url = '')`

// deleteUnused deletes the records of files, once their tasks are gone,
// that no remaining task uses, and returns those it deleted.
func (tx *sqlTx) deleteUnused(ctx context.Context, files []*File) ([]*File, error) {
	var out []*File
	for _, f := range files {
		res, err := tx.exec(ctx, deleteFileIfUnused, f.ID)
		if err != nil {
			return nil, fmt.Errorf("delete file %s: %w", f.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			out = append(out, f)
		}
	}
	return out, nil
}
