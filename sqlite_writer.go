package spool

import (
	"context"
	"database/sql"
	"errors"
	"runtime"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqlWriter is the store's single write path: one goroutine owns the write
// connection and runs every queued function in one transaction (group
// commit), each inside a savepoint so that one failing function does not
// undo the others. An idle writer starts at once: there is no batching
// timer. A goroutine of its own, rather than whichever caller comes first,
// because SQLite's code needs a deep stack, which a long-lived goroutine
// grows once.
type sqlWriter struct {
	ops      chan *writeOp
	closing  chan struct{}
	stopped  chan struct{}
	conn     *sql.Conn
	stmts    map[string]*sql.Stmt
	maxBatch int
	// checkpoint asks the store's checkpointer to run; closed when the
	// writer stops.
	checkpoint chan struct{}
	commits    int
	// restartWAL asks the writer to finish a checkpoint between two
	// transactions, so that the next one writes the WAL from its start.
	restartWAL atomic.Bool
}

// checkpointEvery is how many commits the writer makes between requests to
// checkpoint the WAL.
const checkpointEvery = 64

type writeOp struct {
	ctx context.Context
	fn  func(context.Context, *sqlTx) error
	// oneStatement marks a function that changes the database with at most
	// one statement; SQLite makes a statement (with its triggers) atomic on
	// its own, so it needs no savepoint.
	oneStatement bool
	err          error
	done         chan struct{}
}

var errStoreClosed = errors.New("spool: store closed")

func newSQLWriter(conn *sql.Conn, maxBatch int) *sqlWriter {
	w := &sqlWriter{
		ops:        make(chan *writeOp, maxBatch),
		closing:    make(chan struct{}),
		stopped:    make(chan struct{}),
		conn:       conn,
		stmts:      map[string]*sql.Stmt{},
		maxBatch:   maxBatch,
		checkpoint: make(chan struct{}, 1),
	}
	go w.loop()
	return w
}

// do runs fn in a write transaction and returns once it is committed or has
// failed.
func (w *sqlWriter) do(ctx context.Context, fn func(context.Context, *sqlTx) error) error {
	return w.submit(&writeOp{ctx: ctx, fn: fn, done: make(chan struct{})})
}

// doOne is do for a function that makes at most one change, with a single
// statement.
func (w *sqlWriter) doOne(ctx context.Context, fn func(context.Context, *sqlTx) error) error {
	return w.submit(&writeOp{ctx: ctx, fn: fn, done: make(chan struct{}), oneStatement: true})
}

func (w *sqlWriter) submit(op *writeOp) error {
	select {
	case w.ops <- op:
	case <-w.closing:
		return errStoreClosed
	}
	select {
	case <-op.done:
		return op.err
	case <-w.stopped:
		// Sent as the writer stopped: it ran the op or never will.
		select {
		case <-op.done:
			return op.err
		default:
			return errStoreClosed
		}
	}
}

func (w *sqlWriter) loop() {
	defer close(w.stopped)
	defer close(w.checkpoint)
	batch := make([]*writeOp, 0, w.maxBatch)
	for {
		select {
		case op := <-w.ops:
			batch = append(batch[:0], op)
		case <-w.closing:
			w.refuse()
			return
		}
		// Let goroutines that are about to write (workers finishing
		// together) join this batch: a yield, not a timer.
		runtime.Gosched()
	more:
		for len(batch) < w.maxBatch {
			select {
			case op := <-w.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		w.run(batch)
		for _, op := range batch {
			close(op.done)
		}
		clear(batch)
		if w.restartWAL.Load() {
			// Between transactions nothing can be added to the WAL, so this
			// checkpoint reaches its end (unless a reader still uses it:
			// then a later one will).
			if _, err := w.conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)"); err == nil {
				w.restartWAL.Store(false)
			}
		}
		if w.commits++; w.commits%checkpointEvery == 0 {
			select {
			case w.checkpoint <- struct{}{}:
			default: // one is running or already asked for
			}
		}
	}
}

// refuse fails the operations still queued at close.
func (w *sqlWriter) refuse() {
	for {
		select {
		case op := <-w.ops:
			op.err = errStoreClosed
			close(op.done)
		default:
			return
		}
	}
}

// run commits one batch, retrying while another process holds the lock.
func (w *sqlWriter) run(batch []*writeOp) {
	ctx := context.Background()
	tx := &sqlTx{conn: w.conn, stmts: w.stmts}
	for {
		err := w.attempt(ctx, tx, batch)
		if err == nil {
			return
		}
		if !isBusy(err) || allDone(batch) {
			for _, o := range batch {
				if o.err == nil {
					o.err = err
				}
			}
			return
		}
		for _, o := range batch {
			o.err = nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func allDone(batch []*writeOp) bool {
	for _, o := range batch {
		if o.ctx.Err() == nil {
			return false
		}
	}
	return true
}

// attempt runs a batch in one transaction. An op's own error undoes only
// that op (a savepoint, or SQLite's statement rollback for a single
// statement). An error that loses the transaction (busy, I/O, disk full)
// is returned: then nothing of the batch is committed.
func (w *sqlWriter) attempt(ctx context.Context, tx *sqlTx, batch []*writeOp) error {
	if o := batch[0]; len(batch) == 1 && o.oneStatement {
		// The statement is its own transaction: no BEGIN and COMMIT to
		// run, and no statement journal for SQLite to keep.
		if err := o.ctx.Err(); err != nil {
			o.err = err
			return nil
		}
		if o.err = o.fn(context.WithoutCancel(o.ctx), tx); txLost(o.err) {
			return o.err
		}
		return nil
	}
	if _, err := tx.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	single := len(batch) == 1
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.err = err
			continue
		}
		// A cancel must not interrupt a statement: SQLite would roll back
		// the whole batch, other callers' changes with it.
		octx := context.WithoutCancel(o.ctx)
		savepoint := !single && !o.oneStatement
		if savepoint {
			if _, err := tx.exec(ctx, "SAVEPOINT op"); err != nil {
				tx.exec(ctx, "ROLLBACK")
				return err
			}
		}
		o.err = o.fn(octx, tx)
		switch {
		case o.err == nil:
			if savepoint {
				if _, err := tx.exec(ctx, "RELEASE op"); err != nil {
					tx.exec(ctx, "ROLLBACK")
					return err
				}
			}
		case txLost(o.err):
			tx.exec(ctx, "ROLLBACK")
			return o.err
		case single:
			tx.exec(ctx, "ROLLBACK")
			return nil
		case savepoint:
			if _, err := tx.exec(ctx, "ROLLBACK TO op"); err != nil {
				tx.exec(ctx, "ROLLBACK")
				return err
			}
			if _, err := tx.exec(ctx, "RELEASE op"); err != nil {
				tx.exec(ctx, "ROLLBACK")
				return err
			}
		}
	}
	if _, err := tx.exec(ctx, "COMMIT"); err != nil {
		tx.exec(ctx, "ROLLBACK")
		return err
	}
	return nil
}

// txLost reports whether err is a SQLite error after which the transaction
// may be gone: not the op's own failure but the batch's.
func txLost(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_INTERRUPT:
		return true
	}
	return false
}

func (w *sqlWriter) close() error {
	close(w.closing)
	<-w.stopped
	for _, st := range w.stmts {
		st.Close()
	}
	return w.conn.Close()
}

// isBusy reports whether err is SQLite's "database is locked" (another
// process holds the write lock), which the writer retries.
func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}
