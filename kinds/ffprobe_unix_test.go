//go:build unix

package kinds_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolrun/spool/kinds"
)

// TestFFprobeKilledOnCancel: cancelling the context of a probe in progress
// kills the program. A stand-in for ffprobe that never ends would hang the
// test otherwise. Not parallel: executing a script just written races with
// other tests' forks (ETXTBSY).
func TestFFprobeKilledOnCancel(t *testing.T) {
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	script := filepath.Join(dir, "ffprobe")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n: > '"+started+"'\nPATH=/bin:/usr/bin exec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "input.bin")
	if err := os.WriteFile(input, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the stand-in runs. Polling decides nothing about
		// the outcome: it only waits for the process to exist.
		for ctx.Err() == nil {
			if _, err := os.Stat(started); err == nil {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err := (&kinds.FFprobeProber{Path: script}).Probe(ctx, input)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Probe = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(started); err != nil {
		t.Errorf("the stand-in never ran: %v", err)
	}
}
