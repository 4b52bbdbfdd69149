package spooltest

import (
	"testing"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/internal/storagetest"
)

// TestStorage runs the conformance suite against storages made by
// newStorage, each subtest on a fresh one: put and open, atomic replace, a
// failed or cancelled put that leaves the old bytes, delete, walk, invalid
// keys, concurrent writers. Every Storage implementation must pass it.
func TestStorage(t *testing.T, newStorage func(t *testing.T) spool.Storage) {
	storagetest.Run(t, func(t *testing.T) storagetest.Storage { return newStorage(t) })
}
