package kinds_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
	"github.com/spoolrun/spool/spooltest"
)

// newEngine opens an engine on a private in-memory database, registers
// the kinds with kcfg, starts it, and closes it when the test ends. Retries
// wait a millisecond and polling is fast, so that tests do not sleep.
func newEngine(t *testing.T, cfg spool.Config, kcfg *kinds.Config) *spool.Engine {
	t.Helper()
	cfg.Path = ":memory:"
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return time.Millisecond }
	}
	cfg.PollInterval = 20 * time.Millisecond
	cfg.ProgressInterval = time.Millisecond
	ctx := context.Background()
	e, err := spool.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("close engine: %v", err)
		}
	})
	if err := kinds.Register(e, kcfg); err != nil {
		t.Fatalf("register kinds: %v", err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	return e
}

// run creates a task and waits for it to finish.
func run(t *testing.T, e *spool.Engine, req spool.Request) *spool.Task {
	t.Helper()
	return spooltest.CreateAndWait(t, e, req)
}

// outputFile decodes a completed task's output as a file.
func outputFile(t *testing.T, task *spool.Task) *spool.File {
	t.Helper()
	if task.Status != spool.StatusCompleted {
		t.Fatalf("task %s is %s (error %q), want completed", task.ID, task.Status, task.Error)
	}
	var f spool.File
	if err := json.Unmarshal(task.Output, &f); err != nil {
		t.Fatalf("decode output %s: %v", task.Output, err)
	}
	return &f
}

// jsonOf encodes v, to compare records field by field in one string.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pngBytes encodes a w×h PNG.
func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{uint8(x * 5), uint8(y * 7), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// serve starts a loopback server that counts its requests.
func serve(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

const ffmpegMissing = "ffmpeg not found in PATH: install ffmpeg (apt-get install -y ffmpeg)"

// needFFmpeg skips the test unless ffmpeg and ffprobe are installed.
func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, prog := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skip(ffmpegMissing)
		}
	}
}

// ffmpeg runs ffmpeg with args and fails the test if it fails.
func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	args = append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)
	if out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// h264 returns the encoder for test videos: libx264 when this ffmpeg has
// it, else ffmpeg's own mpeg4.
func h264(t *testing.T) (encoder, codec string) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-hide_banner", "-encoders").Output()
	if err == nil && bytes.Contains(out, []byte(" libx264 ")) {
		return "libx264", "h264"
	}
	return "mpeg4", "mpeg4"
}

// makeVideo writes a 1-second 320×240 25 fps test video with a 440 Hz
// tone and returns its path and video codec.
func makeVideo(t *testing.T) (path, codec string) {
	t.Helper()
	enc, codec := h264(t)
	path = filepath.Join(t.TempDir(), "clip.mp4")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
		"-t", "1", "-c:v", enc, "-pix_fmt", "yuv420p", "-c:a", "aac", path)
	return path, codec
}

// execOutput runs a program and returns its standard output.
func execOutput(t *testing.T, prog string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), prog, args...).Output()
	return string(out), err
}
