//go:build unix

package kinds_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// TestFFprobeProtocolWhitelist: ffprobe is told to open its input, and
// whatever the input refers to, only as local files, whatever this
// machine's ffmpeg would do by default. A stand-in records its arguments.
// Not parallel, as TestFFprobeKilledOnCancel.
func TestFFprobeProtocolWhitelist(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	script := filepath.Join(dir, "ffprobe")
	body := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '" + argsFile + "'\nexit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "list.m3u8")
	if err := os.WriteFile(input, []byte("#EXTM3U\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&kinds.FFprobeProber{Path: script}).Probe(t.Context(), input); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatalf("the stand-in never ran: %v", err)
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := []string{"-protocol_whitelist", "file", "-i", "file:" + input}
	i := slices.Index(args, "-protocol_whitelist")
	if i < 0 || len(args) < i+len(want) || !slices.Equal(args[i:i+len(want)], want) {
		t.Errorf("ffprobe arguments %q, want %q among them", args, want)
	}
	if n := slices.Index(args, "-i"); n < i {
		t.Errorf("ffprobe arguments %q: an -i before the whitelist", args)
	}
}
