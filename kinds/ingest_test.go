package kinds_test

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// TestIngestURL: a url input is downloaded and probed; the output is its
// file record, with the request's names, and it is the record the engine
// stored.
func TestIngestURL(t *testing.T) {
	t.Parallel()
	pic := pngBytes(t, 40, 30)
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(pic)
	})
	e := newEngine(t, spool.Config{AllowPrivateNetworks: true}, nil)
	ctx := context.Background()

	tests := []struct {
		name                  string
		req                   spool.Request
		filename, folder, ref string
	}{
		{"names from the url", spool.Request{URL: srv.URL + "/images/pic.png"}, "pic.png", "", ""},
		{"names from the request", spool.Request{URL: srv.URL + "/images/pic.png",
			Filename: "photo.png", Folder: "uploads/2025", Ref: "original"}, "photo.png", "uploads/2025", "original"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Kind = "ingest"
			task := run(t, e, tt.req)
			out := outputFile(t, task)
			if out.ID == "" || out.Kind != "image" || out.Type != "image/png" || out.Width != 40 || out.Height != 30 ||
				out.Filesize != int64(len(pic)) {
				t.Errorf("output = %s, want a 40×30 image/png file of %d bytes", jsonOf(t, out), len(pic))
			}
			if out.Filename != tt.filename || out.Folder != tt.folder || out.Ref != tt.ref {
				t.Errorf("output names = %q %q %q, want %q %q %q", out.Filename, out.Folder, out.Ref, tt.filename, tt.folder, tt.ref)
			}
			stored, err := e.GetFile(ctx, out.ID)
			if err != nil {
				t.Fatalf("GetFile(%s): %v", out.ID, err)
			}
			if got, want := jsonOf(t, stored), jsonOf(t, out); got != want {
				t.Errorf("GetFile = %s\nwant the output %s", got, want)
			}
			if task.Input == nil || jsonOf(t, task.Input) != jsonOf(t, out) {
				t.Errorf("task input = %s, want the output record", jsonOf(t, task.Input))
			}
			_, r, err := e.OpenFile(ctx, out.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got bytes.Buffer
			got.ReadFrom(r)
			if !bytes.Equal(got.Bytes(), pic) {
				t.Errorf("stored bytes differ from the served ones")
			}
		})
	}
}

// TestIngestNotFound: a 404 fails the task at once, without a retry.
func TestIngestNotFound(t *testing.T) {
	t.Parallel()
	srv, hits := serve(t, http.NotFound)
	e := newEngine(t, spool.Config{AllowPrivateNetworks: true, MaxAttempts: 3}, nil)
	task := run(t, e, spool.Request{Kind: "ingest", URL: srv.URL + "/missing.png"})
	if task.Status != spool.StatusFailed || !strings.Contains(task.Error, "404") {
		t.Errorf("task is %s with error %q, want failed with a 404", task.Status, task.Error)
	}
	if task.Attempt != 1 || hits.Load() != 1 {
		t.Errorf("attempts = %d, requests = %d; want 1 and 1", task.Attempt, hits.Load())
	}
}

// TestIngestFileID: a file_id input is output as is, or copied when the
// request names it differently; the original record never changes.
func TestIngestFileID(t *testing.T) {
	t.Parallel()
	e := newEngine(t, spool.Config{}, nil)
	ctx := context.Background()
	pic := pngBytes(t, 12, 8)
	f, err := e.CreateFile(ctx, bytes.NewReader(pic), &spool.FileParams{Filename: "a.png", Ref: "upload"})
	if err != nil {
		t.Fatal(err)
	}

	same := outputFile(t, run(t, e, spool.Request{Kind: "ingest", FileID: f.ID, Ref: "upload"}))
	if jsonOf(t, same) != jsonOf(t, f) {
		t.Errorf("output = %s, want the input record %s", jsonOf(t, same), jsonOf(t, f))
	}

	renamed := outputFile(t, run(t, e, spool.Request{Kind: "ingest", FileID: f.ID, Ref: "copy", Folder: "copies"}))
	if renamed.ID == f.ID || renamed.Ref != "copy" || renamed.Folder != "copies" || renamed.Filename != "a.png" ||
		renamed.Width != 12 || renamed.Height != 8 || renamed.Type != "image/png" || renamed.Filesize != int64(len(pic)) {
		t.Errorf("output = %s, want a copy of %s named ref copy in folder copies", jsonOf(t, renamed), f.ID)
	}
	if _, err := e.GetFile(ctx, renamed.ID); err != nil {
		t.Errorf("the copy was not stored: %v", err)
	}
	if orig, err := e.GetFile(ctx, f.ID); err != nil || orig.Ref != "upload" || orig.Folder != "" {
		t.Errorf("original = %+v, %v; want it unchanged", orig, err)
	}
}

// TestIngestVideo: with kinds.DefaultProber, a url video input gets its
// duration, frame rate and codec from ffprobe.
func TestIngestVideo(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	clip, codec := makeVideo(t)
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, clip) })
	e := newEngine(t, spool.Config{AllowPrivateNetworks: true, Prober: kinds.DefaultProber()}, nil)
	out := outputFile(t, run(t, e, spool.Request{Kind: "ingest", URL: srv.URL + "/clip.mp4"}))
	if out.Kind != "video" || out.Type != "video/mp4" || out.Codec != codec || out.Width != 320 || out.Height != 240 ||
		out.FPS != 25 || math.Abs(out.Duration-1) > 0.1 {
		t.Errorf("output = %s, want a 1 s 320×240 25 fps %s video/mp4", jsonOf(t, out), codec)
	}
}
