package kinds_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// TestVideoTranscodes is acceptance 1: a 10 s 1920x1080 input to webm/vp9
// at width 640, to mp4/h264 trimmed, and to h265 and av1 once each.
func TestVideoTranscodes(t *testing.T) {
	in := hdClip(t)
	e := newEngine(t, spool.Config{DataDir: t.TempDir()}, nil)
	id := upload(t, e, in)
	cases := []struct {
		name       string
		opts       map[string]any
		codec      string
		w, h       int
		duration   float64
		mp4, audio bool
	}{
		{"webm vp9 width 640", map[string]any{"format": "webm", "codec": "vp9", "width": 640}, "vp9", 640, 360, 10, false, true},
		{"mp4 h264 trimmed", map[string]any{"width": "25%", "start": 2.5, "end": 5.5}, "h264", 480, 270, 3, true, true},
		{"mp4 h265", map[string]any{"codec": "h265", "height": 180, "start": 1, "end": 3}, "hevc", 320, 180, 2, true, true},
		{"webm av1", map[string]any{"format": "webm", "codec": "av1", "width": 320, "end": 2}, "av1", 320, 180, 2, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task := runLong(t, e, spool.Request{Kind: spool.KindVideo, FileID: id, Options: c.opts})
			f := outputFile(t, task)
			p := saveOutput(t, e, f)
			pr := ffprobe(t, p)
			codec, w, h := pr.stream(t, "video")
			if codec != c.codec || w != c.w || h != c.h {
				t.Errorf("ffprobe: %s %dx%d, want %s %dx%d", codec, w, h, c.codec, c.w, c.h)
			}
			checkDuration(t, pr.duration(t), c.duration)
			if pr.has("audio") != c.audio {
				t.Errorf("audio stream: %v, want %v", pr.has("audio"), c.audio)
			}
			if c.mp4 {
				atoms := topAtoms(t, p)
				if i, j := slices.Index(atoms, "moov"), slices.Index(atoms, "mdat"); i < 0 || j < 0 || i > j {
					t.Errorf("top-level atoms %v: want moov before mdat", atoms)
				}
			}
			// The record is the probed output, not the request.
			if f.Object != "source" || f.Kind != "video" || f.Codec != c.codec || f.Width != c.w || f.Height != c.h ||
				f.Duration < c.duration-0.1 || f.Filesize <= 0 {
				t.Errorf("output record %s", jsonOf(t, f))
			}
		})
	}
}

// TestVideoFit checks the output size of each fit with both sides given.
func TestVideoFit(t *testing.T) {
	in := smallClip(t) // 320x180
	e := newEngine(t, spool.Config{}, nil)
	id := upload(t, e, in)
	for _, fit := range []string{"contain", "cover", "fill"} {
		t.Run(fit, func(t *testing.T) {
			task := runLong(t, e, spool.Request{Kind: spool.KindVideo, FileID: id, Options: map[string]any{
				"width": 201, "height": 201, "fit": fit, "background": "#f00", "position": "top-left", "end": 1, "fps": 10}})
			f := outputFile(t, task)
			if f.Width != 200 || f.Height != 200 || f.FPS != 10 {
				t.Errorf("%s: %dx%d at %g fps, want 200x200 (even) at 10 fps", fit, f.Width, f.Height, f.FPS)
			}
		})
	}
}

// TestVideoWithoutAudio: no audio in, no audio out, and no error.
func TestVideoWithoutAudio(t *testing.T) {
	e := newEngine(t, spool.Config{}, nil)
	task := runLong(t, e, spool.Request{Kind: spool.KindVideo, FileID: upload(t, e, silentClip(t))})
	pr := ffprobe(t, saveOutput(t, e, outputFile(t, task)))
	if pr.has("audio") {
		t.Errorf("output has audio: %+v", pr.Streams)
	}
}

// TestVideoRefusedAtCreate: options no handler run could honour are
// refused before anything is stored, naming the field.
func TestVideoRefusedAtCreate(t *testing.T) {
	e := newEngine(t, spool.Config{}, nil)
	cases := []struct {
		opts  map[string]any
		field string
	}{
		{map[string]any{"format": "webm", "codec": "h264"}, "codec"},
		{map[string]any{"format": "webm", "codec": "h265"}, "codec"},
		{map[string]any{"format": "mov", "codec": "av1"}, "codec"},
		{map[string]any{"start": 3, "end": 2}, "end"},
		{map[string]any{"layers": []any{map[string]any{"type": "text", "text": "hi"}}}, "layers"},
	}
	for _, c := range cases {
		_, err := e.Create(t.Context(), spool.Request{Kind: spool.KindVideo, URL: "https://example.com/a.mp4", Options: c.opts})
		var ve *spool.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("Create(%v) = %v, want a validation error on %s", c.opts, err, c.field)
		}
	}
}

// TestVideoCorruptInput: an input ffmpeg cannot read ends failed (not
// error: a retry cannot help) with a readable reason.
func TestVideoCorruptInput(t *testing.T) {
	needFFmpeg(t)
	e := newEngine(t, spool.Config{MaxAttempts: 3}, nil)
	p := filepath.Join(t.TempDir(), "clip.mp4")
	good, err := os.ReadFile(smallClip(t))
	if err != nil {
		t.Fatal(err)
	}
	// The header of a real mp4, then garbage.
	bad := append(good[:64:64], []byte(strings.Repeat("garbage ", 4000))...)
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{spool.KindVideo, spool.KindAudio, spool.KindThumbnails} {
		task := runLong(t, e, spool.Request{Kind: kind, FileID: upload(t, e, p)})
		if task.Status != spool.StatusFailed || task.Attempt != 1 || task.Error == "" {
			t.Errorf("%s: task %s after %d attempts (error %q), want failed at once", kind, task.Status, task.Attempt, task.Error)
		}
		t.Logf("%s: %s", kind, task.Error)
	}
}

// TestVideoWithoutFFmpeg: with ffmpeg absent from PATH, the media kinds
// are unavailable with the install message, a started engine refuses them
// at Create, and a task that reaches it anyway (stored before it started)
// fails with that message. An engine that accepts them leaves their tasks
// to another (TestAcceptUnavailableKindsLeavesTasks).
func TestVideoWithoutFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	const msg = "ffmpeg not found in PATH: install ffmpeg"
	e := newEngine(t, spool.Config{}, nil)
	for _, k := range e.Kinds(t.Context()) {
		if (k.Kind == "video" || k.Kind == "audio" || k.Kind == "thumbnails") && (k.Available || k.Reason != msg) {
			t.Errorf("Kinds: %s available %v, reason %q; want unavailable, %q", k.Kind, k.Available, k.Reason, msg)
		}
	}
	_, err := e.Create(t.Context(), spool.Request{Kind: spool.KindVideo, URL: "https://example.com/a.mp4"})
	if !errors.Is(err, spool.ErrKindUnavailable) || !strings.Contains(err.Error(), msg) {
		t.Errorf("Create video = %v, want ErrKindUnavailable saying %q", err, msg)
	}

	early, err := spool.Open(t.Context(), spool.Config{Path: ":memory:", PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { early.Close(context.Background()) })
	if err := kinds.Register(early, nil); err != nil {
		t.Fatal(err)
	}
	stored, err := early.Create(t.Context(), spool.Request{Kind: spool.KindVideo,
		FileID: upload(t, early, writeFile(t, "clip.mp4", "not a video"))})
	if err != nil {
		t.Fatalf("Create video before Start: %v", err)
	}
	if err := early.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	task, err := early.Wait(ctx, stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != spool.StatusFailed || task.Error != msg {
		t.Errorf("task %s, error %q; want failed, %q", task.Status, task.Error, msg)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVideoProgress is acceptance 5's first half: a 10 s transcode
// reports progress at least 3 times, climbing, and ending at 100 (which
// the completion's event shows).
func TestVideoProgress(t *testing.T) {
	in := hdClip(t)
	e := newEngine(t, spool.Config{}, nil)
	task := runLong(t, e, spool.Request{Kind: spool.KindVideo, FileID: upload(t, e, in),
		Options: map[string]any{"width": 320}})
	outputFile(t, task)
	evs, err := e.Events(t.Context(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var seen []int
	for _, ev := range evs {
		if ev.Task.ID == task.ID && (ev.Type == spool.EventProgress || ev.Type == "task.completed") {
			seen = append(seen, ev.Task.Progress)
		}
	}
	if len(seen) < 3 || seen[len(seen)-1] != 100 || !slices.IsSorted(seen) {
		t.Errorf("progress events %v: want at least 3, climbing, ending at 100", seen)
	}
}

// TestVideoCancel is acceptance 5's second half: cancelling in the middle
// of a transcode kills ffmpeg and leaves no output file, record or work
// file.
func TestVideoCancel(t *testing.T) {
	in := hdClip(t)
	// A name no other process has, to find this test's ffmpeg by.
	unique := filepath.Join(t.TempDir(), "cancel-me-"+strings.ReplaceAll(t.Name(), "/", "-")+".mp4")
	if err := os.Link(in, unique); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	e := newEngine(t, spool.Config{DataDir: dataDir, AllowLocalFiles: true}, nil)
	task, err := e.Create(t.Context(), spool.Request{Kind: spool.KindVideo, URL: "file://" + unique,
		Options: map[string]any{"codec": "vp9", "format": "webm", "quality": 90}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got, err := e.Get(t.Context(), task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Progress > 0 {
			break
		}
		if got.Status.Terminal() || time.Now().After(deadline) {
			t.Fatalf("task %s at %d%% (%q): want it transcoding", got.Status, got.Progress, got.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !running(t, "file:"+dataDir) {
		t.Fatal("no ffmpeg process reading the input while the task is at work")
	}
	if _, err := e.Cancel(t.Context(), task.ID); err != nil {
		t.Fatal(err)
	}
	for running(t, "file:"+dataDir) {
		if time.Now().After(deadline) {
			t.Fatal("ffmpeg still running after the cancel")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The handler has returned once its task is settled; wait for that.
	for {
		files, err := e.ListFiles(t.Context(), &spool.FileListParams{TaskID: task.ID})
		if err != nil {
			t.Fatal(err)
		}
		work, _ := filepath.Glob(filepath.Join(dataDir, ".tmp", "job-*"))
		outputs, _ := filepath.Glob(filepath.Join(dataDir, task.ID, "*", "*.webm"))
		if len(files) == 0 && len(work) == 0 && len(outputs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the cancel: records %v, work dirs %v, output bytes %v", files, work, outputs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether a process has arg in its command line.
func running(t *testing.T, arg string) bool {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", "--", arg).Output()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return strings.TrimSpace(string(out)) != ""
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return false
	}
	t.Skipf("pgrep: %v", err)
	return false
}
