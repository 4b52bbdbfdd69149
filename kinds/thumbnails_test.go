package kinds_test

import (
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// TestThumbnailsSprite is acceptance 4: count 9 gives a sprite of 3x3
// tiles and a VTT of 9 cues covering the duration, each pointing inside
// the sprite.
func TestThumbnailsSprite(t *testing.T) {
	e := newEngine(t, spool.Config{}, nil)
	id := upload(t, e, smallClip(t)) // 4 s, 320x180
	for _, c := range []struct {
		opts       map[string]any
		format     string
		w, h, cols int
		rows       int
	}{
		{map[string]any{"count": 9, "width": 96}, "jpeg", 96, 54, 3, 3},
		{map[string]any{"count": 10, "width": 64, "height": 64, "format": "png"}, "png", 64, 64, 4, 3},
	} {
		count := c.opts["count"].(int)
		task := runLong(t, e, spool.Request{Kind: spool.KindThumbnails, FileID: id, Options: c.opts})
		track := outputFile(t, task)
		if track.Object != "track" || track.Kind != "thumbnails" || track.Format != c.format || track.Count != count ||
			track.Width != c.w || track.Height != c.h || track.Sprite == nil || track.Type != "text/vtt" {
			t.Fatalf("track %s", jsonOf(t, track))
		}
		sprite := track.Sprite
		if sprite.Kind != "image" || sprite.Width != c.cols*c.w || sprite.Height != c.rows*c.h {
			t.Errorf("sprite %s: want a %dx%d image", jsonOf(t, sprite), c.cols*c.w, c.rows*c.h)
		}
		// The sprite decodes at that size, and both records are stored.
		_, r, err := e.OpenFile(t.Context(), sprite.ID)
		if err != nil {
			t.Fatal(err)
		}
		cfg, format, err := image.DecodeConfig(r)
		r.Close()
		if err != nil || cfg.Width != sprite.Width || cfg.Height != sprite.Height || format != c.format {
			t.Errorf("sprite decodes as %s %dx%d (%v)", format, cfg.Width, cfg.Height, err)
		}
		stored, err := e.GetFile(t.Context(), track.ID)
		if err != nil || stored.Sprite == nil || stored.Sprite.ID != sprite.ID {
			t.Errorf("stored track %v (%v): want its sprite %s", stored, err, sprite.ID)
		}
		checkVTT(t, readFile(t, e, track.ID), sprite, count, 4)
	}
}

// checkVTT checks that a thumbnails track has count contiguous cues from 0
// to duration, each pointing at a region inside the sprite.
func checkVTT(t *testing.T, vtt string, sprite *spool.File, count int, duration float64) {
	t.Helper()
	if !strings.HasPrefix(vtt, "WEBVTT\n") {
		t.Fatalf("track does not start with WEBVTT:\n%s", vtt)
	}
	cues := strings.Split(strings.TrimSpace(vtt), "\n\n")[1:]
	if len(cues) != count {
		t.Fatalf("%d cues, want %d:\n%s", len(cues), count, vtt)
	}
	prevEnd := 0.0
	for i, cue := range cues {
		var start, end, target string
		if _, err := fmt.Sscanf(cue, "%s --> %s\n%s", &start, &end, &target); err != nil {
			t.Fatalf("cue %d %q: %v", i, cue, err)
		}
		s, e := vttSeconds(t, start), vttSeconds(t, end)
		if math.Abs(s-prevEnd) > 0.001 || e <= s {
			t.Errorf("cue %d: %s --> %s does not follow %g", i, start, end, prevEnd)
		}
		prevEnd = e
		var x, y, w, h int
		if _, err := fmt.Sscanf(target, sprite.Filename+"#xywh=%d,%d,%d,%d", &x, &y, &w, &h); err != nil {
			t.Fatalf("cue %d target %q: %v", i, target, err)
		}
		if x < 0 || y < 0 || w <= 0 || h <= 0 || x+w > sprite.Width || y+h > sprite.Height {
			t.Errorf("cue %d region %d,%d,%d,%d outside the %dx%d sprite", i, x, y, w, h, sprite.Width, sprite.Height)
		}
	}
	if math.Abs(prevEnd-duration) > 0.1 {
		t.Errorf("cues end at %g, want the duration %g", prevEnd, duration)
	}
}

func vttSeconds(t *testing.T, s string) float64 {
	t.Helper()
	var h, m int
	var sec float64
	if _, err := fmt.Sscanf(s, "%d:%d:%g", &h, &m, &sec); err != nil {
		t.Fatalf("vtt time %q: %v", s, err)
	}
	return float64(h*3600+m*60) + sec
}

func readFile(t *testing.T, e *spool.Engine, id string) string {
	t.Helper()
	_, r, err := e.OpenFile(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestThumbnailsFromURL: a url input is downloaded first (here a local
// file, which Config.AllowLocalFiles lets through the same path), and
// the work files go when the task ends.
func TestThumbnailsFromURL(t *testing.T) {
	dataDir := t.TempDir()
	e := newEngine(t, spool.Config{DataDir: dataDir, AllowLocalFiles: true}, nil)
	task := runLong(t, e, spool.Request{Kind: spool.KindThumbnails, URL: "file://" + smallClip(t),
		Options: map[string]any{"count": 4}})
	track := outputFile(t, task)
	if task.Input == nil || task.Input.Kind != "video" || task.Input.Duration == 0 || track.Count != 4 {
		t.Errorf("input %s, output %s", jsonOf(t, task.Input), jsonOf(t, track))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		work, err := os.ReadDir(dataDir + "/.tmp")
		if err != nil {
			t.Fatal(err)
		}
		if len(work) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("work files left: %v", work)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestVideoUploadProbed is the contract fix: an engine with the media
// kinds registered and no Config.Prober probes an uploaded mp4 fully.
func TestVideoUploadProbed(t *testing.T) {
	e := newEngine(t, spool.Config{}, nil)
	f, err := os.Open(smallClip(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec, err := e.CreateFile(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Codec != "h264" || rec.Width != 320 || rec.Height != 180 || math.Abs(rec.Duration-4) > 0.1 || rec.FPS != 25 {
		t.Errorf("uploaded mp4 recorded as %s: want h264 320x180, 4 s at 25 fps", jsonOf(t, rec))
	}
}
