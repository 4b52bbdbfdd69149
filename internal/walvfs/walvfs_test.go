package walvfs_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolrun/spool/internal/walvfs"
	_ "modernc.org/sqlite"
)

// open opens path with the VFS (or the default one when vfs is ""), WAL,
// and the given extra pragmas.
func open(t *testing.T, path, vfs string, pragmas ...string) *sql.DB {
	t.Helper()
	q := url.Values{}
	if vfs != "" {
		q.Set("vfs", vfs)
	}
	for _, p := range append([]string{"journal_mode(WAL)", "busy_timeout(5000)"}, pragmas...) {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// writer opens path for writing on one connection and makes table t,
// indexed on b.
func writer(t *testing.T, path, vfs string, pragmas ...string) *sql.DB {
	t.Helper()
	w := open(t, path, vfs, pragmas...)
	w.SetMaxOpenConns(1)
	mustExec(t, w, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	mustExec(t, w, "CREATE INDEX t_b ON t (b)")
	return w
}

func register(t *testing.T) string {
	t.Helper()
	name, err := walvfs.Register()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := walvfs.Register(); err != nil || again != name {
		t.Fatalf("second Register = %q, %v", again, err)
	}
	return name
}

func mustExec(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A commit is in the WAL file, not only in the writer's buffer, by the time
// it is visible: a connection through the default VFS (which shares no
// buffer with ours) reads every row of every commit at once.
func TestCommitVisibleThroughFile(t *testing.T) {
	name := register(t)
	for _, sync := range []string{"NORMAL", "FULL", "OFF"} {
		t.Run(sync, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			w := writer(t, path, name, "synchronous("+sync+")")
			r := open(t, path, "")
			for i := 1; i <= 200; i++ {
				mustExec(t, w, "INSERT INTO t (b) VALUES (?)", strings.Repeat(fmt.Sprint(i), i))
				if n := count(t, r); n != i {
					t.Fatalf("after commit %d the other VFS sees %d rows", i, n)
				}
			}
		})
	}
}

// Transactions of every size, including ones far larger than one write
// (the unix VFS writes at most 128 KiB per call) and ones whose pages spill
// from a tiny cache before the commit, so that SQLite rewrites frames it
// already wrote: all land whole, and a rolled-back one leaves nothing.
func TestTransactionSizes(t *testing.T) {
	name := register(t)
	path := filepath.Join(t.TempDir(), "db")
	w := writer(t, path, name, "cache_size(10)")
	want := 0
	for n := 1; n <= 8192; n *= 2 {
		for _, commit := range []bool{false, true} {
			tx, err := w.Begin()
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				mustExec(t, tx, "INSERT INTO t (b) VALUES (?)", fmt.Sprintf("%d-%d-%s", n, i, strings.Repeat("x", 200)))
			}
			mustExec(t, tx, "UPDATE t SET b = b || 'y' WHERE a % 7 = 0")
			if commit {
				if err := tx.Commit(); err != nil {
					t.Fatalf("commit %d rows: %v", n, err)
				}
				want += n
			} else if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := count(t, w); got != want {
		t.Fatalf("%d rows, want %d", got, want)
	}
	// Read back through the default VFS, after a checkpoint and before.
	r := open(t, path, "")
	if got := count(t, r); got != want {
		t.Fatalf("default VFS reads %d rows, want %d", got, want)
	}
	var ok string
	if err := r.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check = %q, %v", ok, err)
	}
	mustExec(t, w, "PRAGMA wal_checkpoint(TRUNCATE)")
	if got := count(t, r); got != want {
		t.Fatalf("after checkpoint %d rows, want %d", got, want)
	}
}

// The WAL is reused from its start after a checkpoint, and rewritten
// frames must replace the old ones in the file, not only in memory.
func TestWALRestart(t *testing.T) {
	name := register(t)
	path := filepath.Join(t.TempDir(), "db")
	w := writer(t, path, name, "wal_autocheckpoint(50)")
	for i := 0; i < 3000; i++ {
		mustExec(t, w, "INSERT INTO t (b) VALUES (?)", strings.Repeat("z", 300))
	}
	w.Close()
	r := open(t, path, "")
	if got := count(t, r); got != 3000 {
		t.Fatalf("%d rows after reopening, want 3000", got)
	}
}

// copyFile copies a file as the kernel has it: what a crash of the process
// would leave.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Every commit is whole in the files the moment it returns, as a crash of
// the process would find them, including one whose pages spilled from a
// small cache before the commit: SQLite then rewrites the checksums of the
// frames it wrote, ending with the commit frame's header alone.
func TestCommitInFilesAtOnce(t *testing.T) {
	name := register(t)
	for _, vfs := range []string{"", name} {
		for _, cache := range []string{"cache_size(10)", "cache_size(-8192)"} {
			t.Run("vfs="+vfs+"/"+cache, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "db")
				w := writer(t, path, vfs, cache, "synchronous(NORMAL)", "wal_autocheckpoint(0)")
				want := 0
				for _, n := range []int{1, 500, 3} {
					tx, err := w.Begin()
					if err != nil {
						t.Fatal(err)
					}
					for i := 0; i < n; i++ {
						mustExec(t, tx, "INSERT INTO t (b) VALUES (?)", fmt.Sprintf("%d-%s", i, strings.Repeat("x", 200)))
					}
					mustExec(t, tx, "UPDATE t SET b = b || 'y'")
					if err := tx.Commit(); err != nil {
						t.Fatal(err)
					}
					want += n
					crash := filepath.Join(t.TempDir(), "db")
					copyFile(t, path, crash)
					copyFile(t, path+"-wal", crash+"-wal")
					r := open(t, crash, "")
					if got := count(t, r); got != want {
						t.Fatalf("recovered %d rows after a commit of %d, want %d", got, n, want)
					}
					r.Close()
				}
			})
		}
	}
}
