package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
)

// TestBlankTokenIsNoToken: a blank --token or SPOOL_TOKEN is no token,
// so that serve refuses to start without one rather than start with a
// token that the handlers drop, refusing every request.
func TestBlankTokenIsNoToken(t *testing.T) {
	for _, secret := range []string{" ", "\t\n"} {
		tokens, err := loadTokens(secret, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(tokens) != 0 {
			t.Errorf("loadTokens(%q) = %d tokens, want none", secret, len(tokens))
		}
		if checkAuth("127.0.0.1:0", len(tokens), false) == nil {
			t.Errorf("secret %q: serve would start", secret)
		}
	}
}

// A task's error quotes what a server answered: its control characters
// must not reach a terminal as escape sequences.
func TestTaskErrorPrintable(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "spool.db")
	ctx := context.Background()
	e, err := spool.Open(ctx, spool.Config{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	e.Register("evil", spool.HandlerFunc(func(context.Context, *spool.Job) error {
		return spool.Permanent(errors.New("bad \x1b[2J\x1b]0;owned\x07 answer\r"))
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	task, err := e.Create(ctx, spool.Request{Kind: "evil"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.Wait(ctx, task.ID); err != nil || got.Status != spool.StatusFailed {
		t.Fatalf("task: %v, %v", got, err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, map[string]string{"SPOOL_DB": db}, "tasks", "ls")
	if r.code != 0 || !strings.Contains(r.stdout, "bad") || strings.ContainsAny(r.stdout, "\x1b\x07\r") {
		t.Errorf("tasks ls: exit %d, %q", r.code, r.stdout)
	}
}
