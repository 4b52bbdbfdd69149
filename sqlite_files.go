package spool

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

func scanFile(r scanner) (*File, error) {
	var data, key, taskID string
	if err := r.Scan(&data, &key, &taskID); err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal([]byte(data), &f); err != nil {
		return nil, fmt.Errorf("decode file: %w", err)
	}
	f.Key, f.TaskID = key, taskID
	return &f, nil
}

// CreateFiles stores file records in one transaction.
func (s *sqliteStore) CreateFiles(ctx context.Context, files []*File) error {
	return s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		return tx.CreateFiles(ctx, files)
	})
}

// CreateFiles inserts file records inside the transaction.
func (tx *sqlTx) CreateFiles(ctx context.Context, files []*File) error {
	for _, f := range files {
		data, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("create file: encode: %w", err)
		}
		created := time.Now()
		if f.Created != nil {
			created = *f.Created
		}
		_, err = tx.exec(ctx, `INSERT INTO files (id, task_id, storage_key, ref, folder, data, created)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, f.ID, f.TaskID, f.Key, f.Ref, f.Folder, string(data), created.UnixNano())
		if err != nil {
			return fmt.Errorf("create file %s: %w", f.ID, err)
		}
	}
	return nil
}

// GetFile reads a file record.
func (s *sqliteStore) GetFile(ctx context.Context, id string) (*File, error) {
	f, err := scanFile(s.queryRow(ctx, "SELECT data, storage_key, task_id FROM files WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("file %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get file %s: %w", id, err)
	}
	return f, nil
}

// ListFiles pages through file records, newest first.
func (s *sqliteStore) ListFiles(ctx context.Context, p *FileListParams) ([]*File, error) {
	var lp FileListParams
	if p != nil {
		lp = *p
	}
	if lp.Limit <= 0 {
		lp.Limit = 20
	}
	q := "SELECT data, storage_key, task_id FROM files WHERE 1 = 1"
	var args []any
	// The literal != '' lets SQLite use the partial indexes.
	for _, f := range []struct{ cond, v string }{{" AND folder = ? AND folder != ''", lp.Folder},
		{" AND ref = ? AND ref != ''", lp.Ref}, {" AND task_id = ? AND task_id != ''", lp.TaskID}, {" AND id < ?", lp.After}} {
		if f.v != "" {
			q += f.cond
			args = append(args, f.v)
		}
	}
	rows, err := s.query(ctx, q+" ORDER BY id DESC LIMIT (SELECT ?)", append(args, lp.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	return scanFiles(rows)
}

// scanFiles reads and closes rows of file records.
func scanFiles(rows *sql.Rows) ([]*File, error) {
	defer rows.Close()
	var out []*File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, fmt.Errorf("list files: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// fileUsers counts the unfinished tasks that take a file as input, found
// as deleteFileIfUnused finds any, and the url task that fetched it as its
// input (its producer): retried, it runs again on the fetched file.
const fileUsers = `SELECT
	(SELECT count(*) FROM tasks WHERE file_id = ?1 AND file_id != '' AND status NOT IN ` + finishedStatuses + `) +
	(SELECT count(*) FROM tasks WHERE json_extract(input, '$.id') = ?1
		AND input IS NOT NULL AND file_id = '' AND url = '' AND status NOT IN ` + finishedStatuses + `) +
	(SELECT count(*) FROM files JOIN tasks ON tasks.id = files.task_id WHERE files.id = ?1 AND files.task_id != ''
		AND tasks.url != '' AND json_extract(tasks.input, '$.id') = ?1 AND tasks.status NOT IN ` + finishedStatuses + `)`

// DeleteFile deletes a file record, unless an unfinished task uses it, in
// one transaction: a task created meanwhile cannot miss the check.
func (s *sqliteStore) DeleteFile(ctx context.Context, id string) error {
	return s.w.doOne(ctx, func(ctx context.Context, tx *sqlTx) error {
		st, err := tx.stmt(ctx, fileUsers)
		if err != nil {
			return fmt.Errorf("delete file %s: %w", id, err)
		}
		var users int
		if err := st.QueryRowContext(ctx, id).Scan(&users); err != nil {
			return fmt.Errorf("delete file %s: %w", id, err)
		}
		if users > 0 {
			return fmt.Errorf("delete file %s: the input of %d unfinished tasks: %w", id, users, ErrFileInUse)
		}
		res, err := tx.exec(ctx, "DELETE FROM files WHERE id = ?", id)
		if err != nil {
			return fmt.Errorf("delete file %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("file %s: %w", id, ErrNotFound)
		}
		return nil
	})
}
