package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // pure-Go SQLite driver, the same one spool uses
)

// system is one task engine under test. Each (system, workload) pair runs in
// its own child process on a fresh database, so an implementation only has to
// support one open → ... → close cycle.
type system interface {
	// open creates the engine on a new database file in dir, with a no-op
	// handler of kind "noop" that calls onRun when it starts and then
	// returns nil. Workers are not started yet.
	open(ctx context.Context, dir string, opts options, onRun func()) error
	// enqueue adds one task in its own call (and transaction).
	enqueue(ctx context.Context) error
	// enqueueBulk adds n tasks with the fastest bulk insert the system has.
	enqueueBulk(ctx context.Context, n int) error
	// start starts the workers.
	start(ctx context.Context) error
	// close stops the workers (if started) and closes the database.
	close(ctx context.Context) error
}

// options are the knobs the harness passes to every system.
type options struct {
	workers int
	// tuned selects the peer's lowest poll interval / cooldown instead of its
	// defaults. It has no effect on spool, which does not poll.
	tuned bool
}

// systems maps a system name to its constructor; each implementation file
// registers itself in init.
var systems = map[string]func() system{}

// settingsNote describes, per system, the non-default settings used, for the
// output and README. Filled in by each implementation file.
var settingsNote = map[string]func(tuned bool) string{}

// openSQLite opens a file database with the settings shared by all systems:
// WAL, synchronous=NORMAL, busy_timeout=5000, pure-Go modernc.org/sqlite.
//
// The pool is limited to one connection: both River (riversqlite package
// docs, riversharedtest) and goqite (README examples) tell users to do so,
// because with several connections their concurrent internals fail with
// SQLITE_BUSY.
func openSQLite(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}
