package spool_test

import (
	"context"
	"database/sql"

	"github.com/spoolrun/spool"

	_ "modernc.org/sqlite"
)

func sqlOpen(path string) (*sql.DB, error) { return sql.Open("sqlite", path) }

var ctxBackground = context.Background()

// openFuzzEngine opens a pure-client engine on a private in-memory database
// with a custom kind registered.
func openFuzzEngine() (*spool.Engine, error) {
	e, err := spool.Open(ctxBackground, spool.Config{Path: ":memory:"})
	if err != nil {
		return nil, err
	}
	e.Register("custom", spool.HandlerFunc(nil))
	return e, nil
}
