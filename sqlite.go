package spool

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/sqlite/*.sql
var sqliteMigrations embed.FS

// SQLiteOptions configures OpenSQLite. A nil *SQLiteOptions uses the defaults.
type SQLiteOptions struct {
	// Synchronous is the SQLite synchronous setting. Defaults to NORMAL,
	// which in WAL mode survives a process crash but may lose the last
	// commits on power loss; FULL survives power loss, at a cost per commit.
	Synchronous string
	// BusyTimeout is how long a write waits for another process's write
	// transaction before retrying. Defaults to 5s; writes retry until their
	// context ends, so "database is locked" never reaches a caller.
	BusyTimeout time.Duration
	// ReadConns is the size of the read pool. Defaults to 4.
	ReadConns int
	// MaxBatch is the most changes committed in one transaction. Defaults
	// to 512.
	MaxBatch int
}

// sqliteStore is the default Store: one write connection shared by
// concurrent callers through group commit, and a pool of read connections.
type sqliteStore struct {
	w      *sqlWriter
	rdb    *sql.DB
	wdb    *sql.DB
	memory bool
}

var _ Store = (*sqliteStore)(nil)

// OpenSQLite opens or creates the SQLite database at path and migrates it.
// The path ":memory:" gives a private in-memory database that every
// connection of the store sees. It refuses a database whose schema is newer
// than this version of spool (ErrSchemaTooNew).
func OpenSQLite(ctx context.Context, path string, opts *SQLiteOptions) (Store, error) {
	var o SQLiteOptions
	if opts != nil {
		o = *opts
	}
	if o.Synchronous == "" {
		o.Synchronous = "NORMAL"
	}
	switch strings.ToUpper(o.Synchronous) {
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		return nil, fmt.Errorf("open sqlite: synchronous %q is not OFF, NORMAL, FULL or EXTRA", o.Synchronous)
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	memory := path == ":memory:"
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous("+o.Synchronous+")")
	var dsn string
	if memory {
		// memdb shares one database between the connections of this process
		// that name it, which plain :memory: does not.
		q.Set("vfs", "memdb")
		dsn = "file:/spool-" + rand.Text() + "?" + q.Encode()
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	wdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	conn, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s := &sqliteStore{wdb: wdb, memory: memory}
	s.w = &sqlWriter{conn: conn, stmts: map[string]*sql.Stmt{}, maxBatch: o.MaxBatch}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	rq := q
	if !memory {
		rq.Add("_pragma", "query_only(1)")
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + rq.Encode()
	}
	if s.rdb, err = sql.Open("sqlite", dsn); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	s.rdb.SetMaxOpenConns(o.ReadConns)
	s.rdb.SetMaxIdleConns(o.ReadConns)
	return s, nil
}

// migrate applies the embedded migrations that the database lacks, each in
// its own transaction, and records the version in user_version.
func (s *sqliteStore) migrate(ctx context.Context) error {
	names, err := fs.Glob(sqliteMigrations, "migrations/sqlite/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	return s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		var version int
		if err := tx.conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if version > len(names) {
			return fmt.Errorf("migrate: database is at version %d, this spool knows %d: %w",
				version, len(names), ErrSchemaTooNew)
		}
		for _, name := range names[version:] {
			n, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0])
			if err != nil || n != version+1 {
				return fmt.Errorf("migrate: migration %s is out of sequence", name)
			}
			b, err := sqliteMigrations.ReadFile(name)
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			if _, err := tx.conn.ExecContext(ctx, string(b)); err != nil {
				return fmt.Errorf("migrate %s: %w", path.Base(name), err)
			}
			version = n
			if _, err := tx.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", n)); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
		}
		return nil
	})
}

// Close closes the connections. Calls after Close fail.
func (s *sqliteStore) Close() error {
	var errs []error
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	errs = append(errs, s.w.close(), s.wdb.Close())
	return errors.Join(errs...)
}

// sqlTx is a write transaction on the writer's connection.
type sqlTx struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// stmt returns the prepared statement for query, preparing it once.
func (tx *sqlTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := tx.stmts[query]; ok {
		return st, nil
	}
	st, err := tx.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	tx.stmts[query] = st
	return st, nil
}

func (tx *sqlTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := tx.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (tx *sqlTx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := tx.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// sqlWriter is the store's single write path. Callers queue a function; the
// first caller to find no transaction running becomes the leader and runs
// every queued function in one transaction (group commit), each inside a
// savepoint so that one failing function does not undo the others. An idle
// writer starts at once: there is no batching timer.
type sqlWriter struct {
	mu       sync.Mutex
	queue    []*writeOp
	leading  bool
	closed   bool
	conn     *sql.Conn
	stmts    map[string]*sql.Stmt
	maxBatch int
}

type writeOp struct {
	ctx  context.Context
	fn   func(context.Context, *sqlTx) error
	err  error
	lead bool          // set before done is closed: this op's caller leads next
	done chan struct{} // closed when the op is finished or promoted to lead
}

var errStoreClosed = errors.New("spool: store closed")

// do runs fn in a write transaction and returns once it is committed or has
// failed.
func (w *sqlWriter) do(ctx context.Context, fn func(context.Context, *sqlTx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan struct{})}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errStoreClosed
	}
	w.queue = append(w.queue, op)
	if w.leading {
		w.mu.Unlock()
		<-op.done
		if !op.lead {
			return op.err
		}
		w.mu.Lock()
	}
	w.leading = true
	batch := w.queue
	if len(batch) > w.maxBatch {
		batch = batch[:w.maxBatch]
	}
	w.queue = append([]*writeOp(nil), w.queue[len(batch):]...)
	w.mu.Unlock()

	w.run(batch)

	w.mu.Lock()
	if len(w.queue) > 0 {
		// Hand over so that no caller serves others' writes for long.
		next := w.queue[0]
		next.lead = true
		close(next.done)
	} else {
		w.leading = false
	}
	w.mu.Unlock()
	for _, o := range batch {
		if o != op {
			close(o.done)
		}
	}
	return op.err
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

func (w *sqlWriter) attempt(ctx context.Context, tx *sqlTx, batch []*writeOp) error {
	if _, err := tx.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	single := len(batch) == 1
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.err = err
			continue
		}
		if single {
			if o.err = o.fn(o.ctx, tx); o.err != nil {
				tx.exec(ctx, "ROLLBACK")
				if isBusy(o.err) {
					return o.err
				}
				return nil
			}
			continue
		}
		if _, err := tx.exec(ctx, "SAVEPOINT op"); err != nil {
			tx.exec(ctx, "ROLLBACK")
			return err
		}
		if o.err = o.fn(o.ctx, tx); o.err != nil {
			if isBusy(o.err) {
				tx.exec(ctx, "ROLLBACK")
				return o.err
			}
			if _, err := tx.exec(ctx, "ROLLBACK TO op"); err != nil {
				tx.exec(ctx, "ROLLBACK")
				return err
			}
		}
		if _, err := tx.exec(ctx, "RELEASE op"); err != nil {
			tx.exec(ctx, "ROLLBACK")
			return err
		}
	}
	if _, err := tx.exec(ctx, "COMMIT"); err != nil {
		tx.exec(ctx, "ROLLBACK")
		return err
	}
	return nil
}

func (w *sqlWriter) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for w.leading { // let the running batch finish
		w.mu.Unlock()
		time.Sleep(time.Millisecond)
		w.mu.Lock()
	}
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
