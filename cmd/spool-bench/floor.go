package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spoolrun/spool/internal/walvfs"
)

// runFloor measures what SQLite itself allows on this machine, without
// spool: inserts of one small row (no -payload) per transaction into a
// table with one index, with spool's file settings (its WAL VFS, 2 KiB
// pages, WAL, the synchronous flag) but SQLite's own checkpoints. spool's
// create figures are best read against it: the machine's I/O varies from
// hour to hour, and moves both alike.
func runFloor(o options) (*result, error) {
	vfs, err := walvfs.Register()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(o.Dir, "floor.db")
	db, err := sql.Open("sqlite", "file:"+path+"?vfs="+vfs+"&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`PRAGMA page_size = 2048; PRAGMA journal_mode = WAL; PRAGMA synchronous = ` + o.Sync + `;
		CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created INTEGER NOT NULL);
		CREATE INDEX t_name ON t (name)`); err != nil {
		return nil, err
	}
	st, err := db.Prepare("INSERT INTO t (name, created) VALUES (?, ?)")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	lat := make([]time.Duration, o.N)
	start := time.Now()
	for i := range o.N {
		t0 := time.Now()
		if _, err := st.Exec(fmt.Sprintf("task_%08d", i), t0.UnixNano()); err != nil {
			return nil, err
		}
		lat[i] = time.Since(t0)
	}
	el := time.Since(start)
	// The same rows in transactions of 500.
	const batch = 500
	bstart := time.Now()
	for i := 0; i < o.N; i += batch {
		tx, err := db.Begin()
		if err != nil {
			return nil, err
		}
		bst := tx.Stmt(st)
		for j := i; j < min(i+batch, o.N); j++ {
			if _, err := bst.Exec(fmt.Sprintf("task_%08d", o.N+j), time.Now().UnixNano()); err != nil {
				tx.Rollback()
				return nil, err
			}
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
	}
	bel := time.Since(bstart)
	p50, p99 := percentiles(lat)
	return &result{N: o.N, Figures: map[string]float64{"tasks/s": float64(o.N) / el.Seconds(), "p50": p50, "p99": p99},
		Note: fmt.Sprintf("SQLite alone: one row per transaction; in transactions of %d: %.0f rows/s", batch, float64(o.N)/bel.Seconds())}, nil
}
