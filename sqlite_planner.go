package spool

import (
	"context"
	"time"
)

// The query planner needs statistics (sqlite_stat1) to choose between
// indexes: without them, a list of a rare kind's failed tasks walked the
// status index, 140 ms at p50 with a million tasks stored, where the kind
// index answers in a millisecond. The store keeps them as SQLite advises
// for long-lived connections: PRAGMA optimize when it opens (before its
// read connections open, since a connection loads the statistics when it
// opens), every optimizeEvery on the writer between transactions, and at
// Close. Its 0x10000 bit has SQLite look at every table, not only those
// this connection's planner already had statistics for; ANALYZE then runs
// on the tables whose size moved a lot, within a limit SQLite sets, so
// that it takes milliseconds at any size. Read connections are replaced
// every optimizeEvery, and so load the new statistics.

// optimizePragma refreshes the planner's statistics where they are stale.
const optimizePragma = "PRAGMA optimize=0x10002"

// optimizeEvery is how often a store refreshes the statistics while it
// runs.
const optimizeEvery = time.Hour

// optimizeIfDue refreshes the statistics on the writer's connection, at
// most every optimizeEvery, between transactions. It is best effort: a
// failure (another process holds the lock) is tried again next time.
func (w *sqlWriter) optimizeIfDue() {
	if time.Since(w.optimized) < optimizeEvery {
		return
	}
	w.optimized = time.Now()
	w.conn.ExecContext(context.Background(), optimizePragma)
}
