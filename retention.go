package spool

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// retentionChunk is the most tasks deleted in one transaction, so that the
// single writer is never held long by retention.
const retentionChunk = 500

// retain deletes the finished tasks past their status's Retention, a chunk
// per transaction, then the bytes of the files deleted with them.
func (e *Engine) retain(ctx context.Context) error {
	now := time.Now()
	for _, st := range statuses {
		age, ok := e.cfg.Retention[st]
		if !ok {
			continue
		}
		for {
			n, files, err := e.store.DeleteFinished(ctx, st, now.Add(-age), retentionChunk)
			if err != nil {
				return fmt.Errorf("delete %s tasks: %w", st, err)
			}
			if err := e.deleteBytes(ctx, files); err != nil {
				return err
			}
			if n < retentionChunk {
				break
			}
		}
	}
	return nil
}

// retentionEvery is how often the maintenance loop should run for the
// shortest Retention: a tenth of it, or a minute if none is set.
func (e *Engine) retentionEvery() time.Duration {
	every := time.Minute
	for _, age := range e.cfg.Retention {
		every = min(every, age/10)
	}
	return every
}

// deleteBytes deletes the bytes of files whose records are deleted. Bytes
// left by a failure or a crash before this have no record, and the sweeper
// deletes them once they are OrphanFileAge old.
func (e *Engine) deleteBytes(ctx context.Context, files []*File) error {
	if len(files) == 0 {
		return nil
	}
	st, err := e.openStorage()
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		if err := st.Delete(ctx, f.Key); err != nil {
			errs = append(errs, fmt.Errorf("delete file bytes %s: %w", f.ID, err))
		}
	}
	return errors.Join(errs...)
}
