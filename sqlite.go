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
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spoolrun/spool/internal/walvfs"
)

//go:embed migrations/sqlite/*.sql
var sqliteMigrations embed.FS

// SQLiteOptions configures OpenSQLite. A nil *SQLiteOptions uses the defaults.
type SQLiteOptions struct {
	// Synchronous is the SQLite synchronous setting. Defaults to NORMAL,
	// which in WAL mode survives a process crash but may lose the last
	// commits on power loss; FULL survives power loss, at a cost per commit.
	Synchronous string
	// BusyTimeout is how long a read waits for a lock that another
	// connection holds (in WAL mode, rare), and how long an in-memory
	// database's commit waits for its reads to end. Defaults to 5s. Writes
	// to a file wait for another connection's lock in steps of at most 20ms
	// (or BusyTimeout, if shorter) and retry until their context ends, so
	// "database is locked" never reaches a caller. A write whose context
	// ends while it waits returns the context's error soon after, and is
	// not made; one whose transaction is already committing returns that
	// commit's outcome instead.
	BusyTimeout time.Duration
	// ReadConns is the size of the read pool. Defaults to 4.
	ReadConns int
	// MaxBatch is the most changes committed in one transaction. Defaults
	// to 512.
	MaxBatch int
	// PageSize is the page size, in bytes, of a database file that
	// OpenSQLite creates; an existing database keeps its own. Defaults to
	// 2048: a commit writes each page it changes whole, and a task's
	// changes touch a few bytes of several pages, so smaller pages write
	// less (a Create writes about 12 KiB, not 24). A task row stays in one
	// page up to about 2 KB; larger ones continue in overflow pages.
	PageSize int
}

// sqliteStore is the default Store: one write connection shared by
// concurrent callers through group commit, and a pool of read connections.
type sqliteStore struct {
	w            *sqlWriter
	rdb          *sql.DB
	wdb          *sql.DB
	cdb          *sql.DB       // checkpoints
	checkpointed chan struct{} // closed when checkpointLoop returns
	reads        sync.Map      // query → *sql.Stmt prepared on the read pool
}

// read returns the read pool's prepared statement for query, so that hot
// reads are not parsed again on every call.
func (s *sqliteStore) read(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.reads.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.rdb.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.reads.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// queryRow runs a prepared read that returns one row.
func (s *sqliteStore) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.read(ctx, query)
	if err != nil {
		// Let the error surface through Scan, as QueryRow does.
		return s.rdb.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a prepared read.
func (s *sqliteStore) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.read(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
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
	if o.PageSize == 0 {
		o.PageSize = 2048
	}
	if o.PageSize < 512 || o.PageSize > 65536 || o.PageSize&(o.PageSize-1) != 0 {
		return nil, fmt.Errorf("open sqlite: page size %d is not a power of two from 512 to 65536", o.PageSize)
	}
	memory := path == ":memory:"
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	// Statement journals (a statement with triggers may need undoing on
	// its own) stay in memory instead of a temporary file per write.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "synchronous("+o.Synchronous+")")
	var dsn string
	if memory {
		// memdb shares one database between the connections of this process
		// that name it, which plain :memory: does not.
		q.Set("vfs", "memdb")
		dsn = "file:/spool-" + rand.Text() + "?" + q.Encode()
	} else {
		// Each commit is written to the WAL with one system call.
		name, err := walvfs.Register()
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		q.Set("vfs", name)
		q.Add("_pragma", "journal_mode(WAL)")
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	wdsn := dsn
	if !memory {
		// Checkpoints run on a connection of their own (checkpointLoop), so
		// that a commit never waits for one.
		wdsn += "&_pragma=wal_autocheckpoint(0)"
	}
	if !memory {
		if err := createSQLite(ctx, path, o.PageSize); err != nil {
			return nil, err
		}
	}
	// The writer's page cache is 8 MiB (SQLite's default is 2): a claim or
	// a completion then finds the index pages it needs in memory even with a
	// million finished rows in the table.
	wdb, err := sql.Open("sqlite", wdsn+"&_pragma=cache_size(-8192)")
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
	if !memory {
		// Short waits in SQLite for another connection's lock, so that the
		// writer checks its callers' contexts between them (see sqlWriter).
		// In memory no other connection writes: the writer waits only for
		// its store's readers to finish before it commits, which they do
		// soon, and which it must not give up on early.
		step := min(o.BusyTimeout, busyStep).Milliseconds()
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", max(step, 1))); err != nil {
			conn.Close()
			wdb.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	s := &sqliteStore{wdb: wdb}
	s.w = newSQLWriter(conn, o.MaxBatch)
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// Before the read connections open, which load the statistics then
	// (see sqlite_planner.go).
	if err := s.w.do(ctx, func(ctx context.Context, tx *sqlTx) error {
		s.w.optimized = time.Now()
		_, err := tx.exec(ctx, optimizePragma)
		return err
	}); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite: planner statistics: %w", err)
	}
	if !memory {
		q.Add("_pragma", "query_only(1)")
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	if s.rdb, err = sql.Open("sqlite", dsn); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	s.rdb.SetMaxOpenConns(o.ReadConns)
	s.rdb.SetMaxIdleConns(o.ReadConns)
	s.rdb.SetConnMaxLifetime(optimizeEvery) // new connections load new statistics
	if !memory {
		if s.cdb, err = sql.Open("sqlite", wdsn); err != nil {
			s.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		s.cdb.SetMaxOpenConns(1)
		s.checkpointed = make(chan struct{})
		go s.checkpointLoop()
	}
	return s, nil
}

// createSQLite gives a database file that does not exist yet (or is
// empty) its page size and WAL mode: the page size is fixed by the first
// write, and the connections' own settings come too late for it.
func createSQLite(ctx context.Context, path string, pageSize int) error {
	exists := func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() > 0
	}
	if exists() {
		return nil
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("create sqlite %s: %w", path, err)
	}
	defer db.Close()
	// Another store opening the same new file at the same time may hold
	// it, and SQLite does not always wait while it changes the journal
	// mode: try again until one of them has made it.
	for {
		_, err = db.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d; PRAGMA journal_mode = WAL", pageSize))
		if err == nil || exists() {
			return nil
		}
		if !isBusy(err) {
			return fmt.Errorf("create sqlite %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create sqlite %s: %w", path, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// walRestartFrames is the WAL length, in frames, past which the writer
// finishes a checkpoint itself so that the WAL starts again from its
// beginning. A PASSIVE checkpoint running beside a busy writer never catches
// up, and an ever longer WAL makes every commit extend the file, which costs
// several times what overwriting it does.
const walRestartFrames = 8192

// checkpointLoop copies the WAL back into the database whenever the writer
// has committed enough to ask for it. PASSIVE never blocks the writer; the
// WAL is reused from its start once a checkpoint has caught up.
func (s *sqliteStore) checkpointLoop() {
	defer close(s.checkpointed)
	for range s.w.checkpoint {
		var busy, frames, done int
		if err := s.cdb.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done); err != nil {
			continue // the next request tries again
		}
		if frames >= walRestartFrames {
			s.w.restartWAL.Store(true)
		}
	}
	// Closing: leave a small WAL behind.
	s.cdb.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
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
	s.reads.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	errs = append(errs, s.w.close(), s.wdb.Close())
	if s.cdb != nil {
		<-s.checkpointed
		errs = append(errs, s.cdb.Close())
	}
	return errors.Join(errs...)
}

// sqlTx is a write transaction on the writer's connection.
type sqlTx struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	// counted is the last UnfinishedSteps answer, kept until the next
	// statement: the hooks of sibling steps whose outcomes share one
	// UPDATE count the same workflow one after another, with nothing
	// written in between (see UnfinishedSteps).
	counted unfinished
}

// unfinished is an answer of UnfinishedSteps.
type unfinished struct {
	parent string // empty: none kept
	n      int
	status Status
}

// stmt returns the prepared statement for query, preparing it once. Any
// statement may write, so it forgets the kept count.
func (tx *sqlTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	tx.counted.parent = ""
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
