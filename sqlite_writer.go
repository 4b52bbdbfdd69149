package spool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqlWriter is the store's single write path. A caller that finds the
// writer idle commits its function itself, on its own goroutine, so that a
// lone write wakes no other goroutine (each wake-up is a futex call, several
// microseconds in a sandbox). Functions that arrive while a commit runs are
// queued, and the writer's goroutine commits them all in one transaction
// (group commit), each inside a savepoint so that one failing function
// does not undo the others, until the queue is empty. There is no batching
// timer.
//
// While another connection holds the database's lock, a commit is tried
// again and again, waiting at most busyStep in SQLite each time, for as long
// as one of its ops' contexts lives. A caller whose context ends meanwhile
// returns at once: its op is withdrawn unless it has run in a transaction
// that may still commit, whose outcome it then waits for (that transaction
// holds the lock, so it ends soon).
type sqlWriter struct {
	mu      sync.Mutex
	queue   []*writeOp
	leading bool // a commit is running or the writer's goroutine is woken
	// contended is set while writes overlap (the last batch held more than
	// one): callers then queue for the writer's goroutine, whose batches
	// group them, instead of committing alone.
	contended bool
	closed    bool
	idle      sync.Cond     // signalled when leading becomes false
	kick      chan struct{} // wakes the writer's goroutine; closed at close
	stopped   chan struct{}
	conn      *sql.Conn
	stmts     map[string]*sql.Stmt
	// maxBatch bounds a group commit.
	maxBatch int
	// checkpoint asks the store's checkpointer to run; closed when the
	// writer is closed.
	checkpoint chan struct{}
	commits    int
	optimized  time.Time // when the planner's statistics were last refreshed
	// restartWAL asks the writer to finish a checkpoint between two
	// transactions, so that the next one writes the WAL from its start.
	restartWAL atomic.Bool
	// observe, when set, is told of each transaction (Engine.Observe).
	observe atomic.Pointer[commitObserver]
}

// commitObserver is what the writer tells of its transactions: report is
// called when want says someone listens.
type commitObserver struct {
	report func(writes int, took time.Duration)
	want   func() bool
}

// commit runs a batch (see run), timed for the observer if there is one.
func (w *sqlWriter) commit(batch []*writeOp) []*writeOp {
	o := w.observe.Load()
	if o == nil || !o.want() {
		return w.run(batch)
	}
	n, start := len(batch), time.Now()
	batch = w.run(batch)
	o.report(n, time.Since(start))
	return batch
}

// checkpointEvery is how many commits the writer makes between requests to
// checkpoint the WAL: about 1,500 pages of 2 KiB for single creates. Each
// checkpoint syncs twice; every 64 commits they competed with the commits
// for the disk (256: single creates +2-10%).
const checkpointEvery = 256

// busyStep is the writer connection's busy_timeout: the longest one try of
// a commit waits in SQLite's busy handler for another connection's lock.
// Between tries the writer checks its ops' contexts, so that a caller's
// deadline is kept even while the lock is held for long.
const busyStep = 20 * time.Millisecond

// busyPause is the longest pause between two tries of a commit that found
// the database locked; pauses start at a millisecond and double.
const busyPause = 16 * time.Millisecond

// The states of a writeOp.
const (
	// opWaiting: the op has not run in a transaction that may still
	// commit; its caller may withdraw it.
	opWaiting int32 = iota
	// opTaken: the writer owns the op until it answers it; its outcome is
	// that of the transaction it runs in.
	opTaken
	// opWithdrawn: the caller's context ended first; the op is never run
	// and never answered.
	opWithdrawn
)

type writeOp struct {
	ctx context.Context
	fn  func(context.Context, *sqlTx) error
	// state is opWaiting, opTaken or opWithdrawn.
	state atomic.Int32
	// oneStatement marks a function that changes the database with at most
	// one statement and can fail only in it or before it (it reads nothing
	// back from it to decode); SQLite makes a statement (with its triggers)
	// atomic on its own, so it needs no savepoint.
	oneStatement bool
	// change, when set, is a mergeable Change that fn applies: ops with
	// one next to each other in a batch share one UPDATE instead.
	change *Change
	// create, when set, is a task without idempotency key that fn inserts:
	// ops with one next to each other share a multi-row INSERT instead.
	create *Task
	// record, when set, is a delivered webhook attempt that fn records:
	// ops with one next to each other share three statements instead.
	record *recordOp
	err    error
	// panicked holds what fn panicked with: the op is undone, and the
	// panic goes on in the caller's goroutine, not the writer's.
	panicked any
	done     chan struct{} // closed when a queued op is finished
}

// call runs o.fn, turning a panic into an error that undoes the op.
func (o *writeOp) call(tx *sqlTx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			o.panicked = r
			err = fmt.Errorf("spool: write panicked: %v", r)
		}
	}()
	// A cancel must not interrupt a statement: SQLite would roll back the
	// whole batch, other callers' changes with it.
	return o.fn(context.WithoutCancel(o.ctx), tx)
}

// claim takes the op for the transaction being built, and reports whether
// to run it: not if its caller has withdrawn it, nor if its context has
// ended (it is then answered with the context's error).
func (o *writeOp) claim() bool {
	if !o.state.CompareAndSwap(opWaiting, opTaken) {
		return false
	}
	if err := o.ctx.Err(); err != nil {
		o.err = err
		return false
	}
	return true
}

// own takes the op, if its caller has not withdrawn it, to answer it.
func (o *writeOp) own() bool {
	return o.state.Load() == opTaken || o.state.CompareAndSwap(opWaiting, opTaken)
}

// wait waits for the writer to answer a queued op, and reports false if
// the op's context ended first and the op was withdrawn.
func (o *writeOp) wait() bool {
	select {
	case <-o.done:
		return true
	case <-o.ctx.Done():
	}
	if o.state.CompareAndSwap(opWaiting, opWithdrawn) {
		return false
	}
	// It has run in the transaction being committed: its outcome is that
	// transaction's, which holds the lock and so ends soon.
	<-o.done
	return true
}

var errStoreClosed = errors.New("spool: store closed")

func newSQLWriter(conn *sql.Conn, maxBatch int) *sqlWriter {
	w := &sqlWriter{
		kick:       make(chan struct{}, 1),
		stopped:    make(chan struct{}),
		conn:       conn,
		stmts:      map[string]*sql.Stmt{},
		maxBatch:   maxBatch,
		checkpoint: make(chan struct{}, 1),
	}
	w.idle.L = &w.mu
	// A goroutine of its own for batches, rather than whichever caller
	// comes next, because SQLite's code needs a deep stack, which a
	// long-lived goroutine grows once, and so that no caller waits for
	// other callers' writes after its own.
	go w.loop()
	return w
}

// do runs fn in a write transaction and returns once it is committed or has
// failed.
func (w *sqlWriter) do(ctx context.Context, fn func(context.Context, *sqlTx) error) error {
	return w.submit(&writeOp{ctx: ctx, fn: fn})
}

// doOne is do for a function that makes at most one change, with a single
// statement.
func (w *sqlWriter) doOne(ctx context.Context, fn func(context.Context, *sqlTx) error) error {
	return w.submit(&writeOp{ctx: ctx, fn: fn, oneStatement: true})
}

func (w *sqlWriter) submit(op *writeOp) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errStoreClosed
	}
	if w.leading || w.contended {
		op.done = make(chan struct{})
		w.queue = append(w.queue, op)
		if !w.leading {
			w.leading = true
			w.kick <- struct{}{}
		}
		w.mu.Unlock()
		if !op.wait() {
			return op.ctx.Err()
		}
	} else {
		w.leading = true
		w.mu.Unlock()
		w.commit([]*writeOp{op})
		w.afterCommit()
		w.release()
	}
	if op.panicked != nil {
		panic(op.panicked)
	}
	return op.err
}

// release ends a caller's commit: the writer's goroutine takes what was
// queued meanwhile (or, closing, fails it).
func (w *sqlWriter) release() {
	w.mu.Lock()
	if len(w.queue) > 0 {
		w.contended = !w.closed
		w.kick <- struct{}{}
	} else {
		w.leading = false
		w.idle.Broadcast()
	}
	w.mu.Unlock()
}

// loop commits the queue in batches each time a caller's commit leaves
// work behind, until the queue is empty.
func (w *sqlWriter) loop() {
	defer close(w.stopped)
	for range w.kick {
		w.mu.Lock()
		for len(w.queue) > 0 && !w.closed {
			// Let goroutines that are about to write (workers finishing
			// together) join this batch: a yield, not a timer.
			w.mu.Unlock()
			runtime.Gosched()
			w.mu.Lock()
			n := min(len(w.queue), w.maxBatch)
			batch := w.queue[:n:n]
			w.queue = w.queue[n:]
			w.contended = n > 1
			w.mu.Unlock()
			batch = w.commit(batch)
			w.afterCommit()
			for _, op := range batch {
				close(op.done)
			}
			w.mu.Lock()
		}
		for _, op := range w.queue {
			if op.own() {
				op.err = errStoreClosed
				close(op.done)
			}
		}
		w.queue = nil
		w.leading = false
		w.idle.Broadcast()
		w.mu.Unlock()
	}
}

// afterCommit asks for checkpoints, and finishes one itself when the WAL
// has grown long. Between transactions nothing can be added to the WAL, so
// that checkpoint reaches its end (unless a reader still uses it: then a
// later one will).
func (w *sqlWriter) afterCommit() {
	if w.restartWAL.Load() {
		if _, err := w.conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)"); err == nil {
			w.restartWAL.Store(false)
		}
	}
	if w.commits++; w.commits%checkpointEvery == 0 {
		select {
		case w.checkpoint <- struct{}{}:
		default: // one is running or already asked for
		}
		w.optimizeIfDue()
	}
}

// run commits one batch, retrying while another connection holds the
// lock, and returns the ops of the batch left to answer; it drops those
// withdrawn and answers those whose context ended while the lock was held.
func (w *sqlWriter) run(batch []*writeOp) []*writeOp {
	ctx := context.Background()
	tx := &sqlTx{conn: w.conn, stmts: w.stmts}
	pause := time.Millisecond
	for {
		err := w.attempt(ctx, tx, batch)
		if err == nil {
			return batch
		}
		if !isBusy(err) {
			kept := batch[:0]
			for _, o := range batch {
				if o.own() {
					if o.err == nil {
						o.err = err
					}
					kept = append(kept, o)
				}
			}
			return kept
		}
		if batch = retry(batch); len(batch) == 0 {
			return nil
		}
		time.Sleep(pause)
		pause = min(2*pause, busyPause)
	}
}

// retry readies a batch whose transaction was rolled back for another try.
// An op whose context has ended is answered with its context's error (it
// was not made); the others wait again, and may be withdrawn meanwhile. It
// returns the ops to try again.
func retry(batch []*writeOp) []*writeOp {
	kept := batch[:0]
	for _, o := range batch {
		switch o.state.Load() {
		case opWithdrawn:
			continue
		case opTaken:
			o.err, o.panicked = nil, nil
			if o.ctx.Err() == nil {
				o.state.Store(opWaiting)
				kept = append(kept, o)
				continue
			}
		case opWaiting:
			if o.ctx.Err() == nil {
				kept = append(kept, o)
				continue
			}
			if !o.state.CompareAndSwap(opWaiting, opTaken) {
				continue // withdrawn meanwhile
			}
		}
		o.err = o.ctx.Err()
		if o.done != nil {
			close(o.done)
		}
	}
	return kept
}

// attempt runs a batch in one transaction. An op's own error undoes only
// that op (a savepoint, or SQLite's statement rollback for a single
// statement). An error that loses the transaction (busy, I/O, disk full)
// is returned: then nothing of the batch is committed.
func (w *sqlWriter) attempt(ctx context.Context, tx *sqlTx, batch []*writeOp) error {
	if o := batch[0]; len(batch) == 1 && o.oneStatement {
		// The statement is its own transaction: no BEGIN and COMMIT to
		// run, and no statement journal for SQLite to keep.
		if !o.claim() {
			return nil
		}
		if o.err = o.call(tx); txLost(o.err) {
			return o.err
		}
		return nil
	}
	if _, err := tx.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	single := len(batch) == 1
	for i := 0; i < len(batch); i++ {
		o := batch[i]
		if !o.claim() {
			continue
		}
		if run := mergeRun(batch[i:]); len(run) > 1 {
			merge := w.applyMerged
			if run[0].create != nil {
				merge = w.insertMerged
			} else if run[0].record != nil {
				merge = w.recordMerged
			}
			if err := merge(ctx, tx, run); err != nil {
				tx.exec(ctx, "ROLLBACK")
				return err
			}
			i += len(run) - 1
			continue
		}
		savepoint := !single && !o.oneStatement
		if savepoint {
			if _, err := tx.exec(ctx, "SAVEPOINT op"); err != nil {
				tx.exec(ctx, "ROLLBACK")
				return err
			}
		}
		o.err = o.call(tx)
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

// maxMerged is the most ops that share one statement: each run size has a
// statement of its own, prepared once.
const maxMerged = 16

// mergeRun returns the ops at the head of batch, whose first is claimed,
// that can share statements, claiming them: all carrying a mergeable
// change, each to a different task (one UPDATE would apply only one of two
// changes to a task, and report both), all a task to create, or all a
// delivered attempt to record for one owner.
func mergeRun(batch []*writeOp) []*writeOp {
	head := batch[0]
	if head.change == nil && head.create == nil && head.record == nil {
		return batch[:1]
	}
	n := 1
	for ; n < len(batch) && n < maxMerged && joins(batch[:n], batch[n]); n++ {
		if !batch[n].claim() {
			break
		}
	}
	return batch[:n]
}

// joins reports whether o can share the statements of run.
func joins(run []*writeOp, o *writeOp) bool {
	switch head := run[0]; {
	case head.create != nil:
		return o.create != nil
	case head.record != nil:
		return o.record != nil && mergeableRecord(head.record, o.record)
	default:
		return o.change != nil &&
			!slices.ContainsFunc(run, func(p *writeOp) bool { return p.change.ID == o.change.ID })
	}
}

// insertMerged inserts a run's tasks with one statement. If that fails
// for a reason of the tasks' own, they are inserted one by one, so that
// only the culprit fails.
func (w *sqlWriter) insertMerged(ctx context.Context, tx *sqlTx, run []*writeOp) error {
	tasks := make([]*Task, len(run))
	for i, o := range run {
		tasks[i] = o.create
	}
	err := shared(func() error { return tx.insertExact(ctx, tasks) })
	if err == nil || txLost(err) {
		return err
	}
	return oneByOne(tx, run)
}

// shared runs a statement shared by a run of ops, turning a panic (in
// encoding an op's caller-supplied values, before the statement runs) into
// an error, so that the run falls back to one op at a time and the panic
// reaches that op's caller.
func shared(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("spool: write panicked: %v", r)
		}
	}()
	return f()
}

// oneByOne runs a run's ops one statement each, after their shared
// statement failed (and SQLite undid it) for a reason of one op's own.
func oneByOne(tx *sqlTx, run []*writeOp) error {
	ctx := context.Background()
	for _, o := range run {
		if o.oneStatement {
			if o.err = o.call(tx); txLost(o.err) {
				return o.err
			}
			continue
		}
		// A change with a hook: the hook's failure undoes the change.
		if _, err := tx.exec(ctx, "SAVEPOINT op"); err != nil {
			return err
		}
		o.err = o.call(tx)
		if txLost(o.err) {
			return o.err
		}
		if o.err != nil {
			if _, err := tx.exec(ctx, "ROLLBACK TO op"); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, "RELEASE op"); err != nil {
			return err
		}
	}
	return nil
}

// recordMerged records a run of delivered attempts together. If that
// fails for a reason of the records' own, the run is undone and they are
// recorded one by one, so that each gets its own answer.
func (w *sqlWriter) recordMerged(ctx context.Context, tx *sqlTx, run []*writeOp) error {
	ops := make([]*recordOp, len(run))
	for i, o := range run {
		ops[i] = o.record
		o.record.err, *o.record.next = nil, nil // from an earlier try of the batch
	}
	// Three statements: a failure after the first must undo it.
	failed, err := merged(ctx, tx, true, func() error { return tx.recordDelivered(ctx, ops) })
	if err != nil {
		return err
	}
	if failed {
		for _, o := range ops {
			*o.next = nil
		}
		return oneByOne(tx, run)
	}
	for i, o := range run {
		o.err = ops[i].err
	}
	return nil
}

// applyMerged applies a run of mergeable changes with one statement, then
// runs the hooks of those made. If that fails for a reason of the changes'
// own, or a hook fails, the run is undone and its changes are applied one
// by one, so that each gets its own answer.
func (w *sqlWriter) applyMerged(ctx context.Context, tx *sqlTx, run []*writeOp) error {
	chs := make([]*Change, len(run))
	hooks := false
	for i, o := range run {
		chs[i] = o.change
		hooks = hooks || o.change.Hook != nil
	}
	var errs []error
	// A hook's failure must undo the shared statement too.
	failed, err := merged(ctx, tx, hooks, func() (err error) {
		if errs, err = tx.applyMerged(ctx, chs); err != nil {
			return err
		}
		for i, ch := range chs {
			if errs[i] == nil && ch.Hook != nil {
				if err := ch.Hook(ctx, tx, nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if failed {
		return oneByOne(tx, run)
	}
	for i, o := range run {
		o.err = errs[i]
	}
	return nil
}

// merged runs f, the shared statements of a run of ops, inside a
// savepoint when undo is set (f may fail after a statement it made), and
// reports whether it failed for a reason of the ops' own, its work
// undone: the run is then done one op at a time. err is an error that
// loses the transaction.
func merged(ctx context.Context, tx *sqlTx, undo bool, f func() error) (failed bool, err error) {
	if undo {
		if _, err := tx.exec(ctx, "SAVEPOINT merged"); err != nil {
			return false, err
		}
	}
	ferr := shared(f)
	if txLost(ferr) {
		return false, ferr
	}
	if undo {
		if ferr != nil {
			if _, err := tx.exec(ctx, "ROLLBACK TO merged"); err != nil {
				return false, err
			}
		}
		if _, err := tx.exec(ctx, "RELEASE merged"); err != nil {
			return false, err
		}
	}
	return ferr != nil, nil
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
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.stopped // a Close before this one does the rest
		return nil
	}
	w.closed = true
	for w.leading {
		w.idle.Wait()
	}
	w.mu.Unlock()
	close(w.kick)
	<-w.stopped
	close(w.checkpoint)
	for _, st := range w.stmts {
		st.Close()
	}
	// What this run taught the statistics, for the next one; best effort.
	w.conn.ExecContext(context.Background(), optimizePragma)
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
