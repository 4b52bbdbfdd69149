package spool_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/spooltest"
)

func TestSQLiteStore(t *testing.T) {
	for name, path := range map[string]func(t *testing.T) string{
		"file":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "spool.db") },
		"memory": func(*testing.T) string { return ":memory:" },
	} {
		t.Run(name, func(t *testing.T) {
			spooltest.TestStore(t, func(t *testing.T) spool.Store {
				s, err := spool.OpenSQLite(context.Background(), path(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}
