package spool

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// finishedStatuses is the SQL list of final statuses, as the partial index
// tasks_finished names them, so that SQLite may use it.
const finishedStatuses = `('completed', 'failed', 'error', 'cancelled')`

// DeleteTask deletes a finished task with its workflow steps and the files
// they produced that no remaining task uses. Its events stay until pruned,
// but are no longer read: the event reader joins the task row.
func (s *sqliteStore) DeleteTask(ctx context.Context, id string) ([]*File, error) {
	var files []*File
	err := s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		ids, err := json.Marshal([]string{id})
		if err != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
		owned, err := tx.ownedFiles(ctx, string(ids))
		if err != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
		res, err := tx.exec(ctx, `DELETE FROM tasks WHERE id = ?
			AND status IN `+finishedStatuses, id)
		if err != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			cur, err := tx.GetTask(ctx, id)
			if err != nil {
				return err
			}
			return fmt.Errorf("delete task %s: task is %s, only a finished task can be deleted: %w",
				id, cur.Status, ErrInvalidTransition)
		}
		files, err = tx.deleteUnused(ctx, owned)
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
	ORDER BY id LIMIT (SELECT ?3)`

// selectCompleted is selectFinished for completed tasks, which the status
// index leaves out: it walks the ids created before the cutoff.
const selectCompleted = `SELECT id FROM tasks
	WHERE id < ?4 AND status = ?1 AND updated < ?2 AND parent_id IS NULL
	ORDER BY id LIMIT (SELECT ?3)`

// DeleteFinished deletes, in one transaction, up to limit top-level tasks
// of a final status that finished before before, as DeleteTask does.
func (s *sqliteStore) DeleteFinished(ctx context.Context, status Status, before time.Time, limit int) (int, []*File, error) {
	if !status.Terminal() {
		return 0, nil, invalid("status", "%q is not a final status", status)
	}
	if limit <= 0 {
		return 0, nil, invalid("limit", "must be 1 or more")
	}
	var (
		n     int
		files []*File
	)
	err := s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		n, files = 0, nil
		q := selectFinished
		if status == StatusCompleted {
			q = selectCompleted
		}
		rows, err := tx.query(ctx, q, status, before.UnixNano(), limit, idBefore("task_", before))
		if err != nil {
			return fmt.Errorf("delete finished: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("delete finished: %w", err)
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("delete finished: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		list, err := json.Marshal(ids)
		if err != nil {
			return fmt.Errorf("delete finished: %w", err)
		}
		owned, err := tx.ownedFiles(ctx, string(list))
		if err != nil {
			return fmt.Errorf("delete finished: %w", err)
		}
		res, err := tx.exec(ctx, `DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(?))`, string(list))
		if err != nil {
			return fmt.Errorf("delete finished: %w", err)
		}
		deleted, _ := res.RowsAffected()
		n = int(deleted)
		if files, err = tx.deleteUnused(ctx, owned); err != nil {
			return fmt.Errorf("delete finished: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return n, files, nil
}

// ownedFilesQuery selects the file records produced by the tasks whose ids
// are in the JSON array ?1 and by their workflow steps, which ON DELETE
// CASCADE deletes with them.
const ownedFilesQuery = `WITH RECURSIVE doomed (id) AS (
		SELECT value FROM json_each(?1)
		UNION SELECT tasks.id FROM tasks JOIN doomed ON tasks.parent_id = doomed.id
			WHERE tasks.parent_id IS NOT NULL)
	SELECT data, storage_key, task_id FROM files
	WHERE task_id IN (SELECT id FROM doomed) AND task_id != ''`

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
