package spool_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
)

// Found in review: errors that reach users of spool serve and its HTTP API
// named only Go Config fields, which they cannot set. Each now also says
// what the spool command offers, or that it offers nothing.
func TestErrorHintsNameTheCLI(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	e := openFile(t, spool.Config{Path: path})
	asked := 0
	e.Register("picky", pickyHandler{&asked})
	e.Register("fetch", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		_, err := job.InputPath(ctx)
		return err
	}))
	// A task stored by an engine that allows file URLs, for this one to run.
	local := openFile(t, spool.Config{Path: path, AllowLocalFiles: true})
	local.Register("fetch", spool.HandlerFunc(nil)) // never started: it only creates
	stored, err := local.Create(ctx, spool.Request{Kind: "fetch", URL: "file:///etc/hosts"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	img, err := e.CreateFile(ctx, bytes.NewReader(pngBytes(t, 8, 8)), &spool.FileParams{Filename: "a.png"})
	if err != nil {
		t.Fatal(err)
	}
	unavailable := []string{"Config.AcceptUnavailableKinds", "spool serve has no such flag"}
	localFiles := []string{"Config.AllowLocalFiles", "spool serve has no such flag", "POST /files"}
	for _, c := range []struct {
		name string
		req  spool.Request
		want []string
	}{
		{"kind without a handler", spool.Request{Kind: "video", URL: "https://example.com/a.mp4"}, unavailable},
		{"task its checker refuses", spool.Request{Kind: "picky", FileID: img.ID, Options: map[string]any{"mode": "x"}}, unavailable},
		{"file url", spool.Request{Kind: "picky", URL: "file:///etc/hosts"}, localFiles},
		{"loopback url", spool.Request{Kind: "picky", URL: "http://127.0.0.1/a.png"},
			[]string{"Config.AllowPrivateNetworks", "spool serve and spool run --allow-private-networks"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.Create(ctx, c.req)
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Create = %v, want it to name %q", err, w)
				}
			}
		})
	}
	t.Run("file url at run time", func(t *testing.T) {
		done, err := e.Wait(ctx, stored.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range localFiles {
			if done.Status != spool.StatusFailed || !strings.Contains(done.Error, w) {
				t.Errorf("task %s with error %q, want failed naming %q", done.Status, done.Error, w)
			}
		}
	})
}
