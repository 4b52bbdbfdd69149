package kinds_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// notImplemented are the built-in kinds this package leaves unregistered:
// none now. (The engine runs workflow and conditions itself.)
var notImplemented []string

// providerKinds are the kinds Register registers that need a model
// provider; TestSpeechAvailability and TestDescriptionUnavailableWithoutProvider
// check when they are available.
var providerKinds = []string{"speech", "subtitles", "chapters", "nsfw", "description", "outline", "prompt"}

// mediaKinds are the kinds Register registers that need ffmpeg.
var mediaKinds = []string{"video", "audio", "thumbnails"}

// TestRegisterAvailability: Register makes ingest, http and image available
// (the engine itself runs workflow and conditions), the media kinds
// available where ffmpeg is (else unavailable, saying how to install it),
// and leaves every kind it does not implement unregistered; a kind without
// its provider is unavailable, and a started engine refuses it.
func TestRegisterAvailability(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, err := spool.Open(ctx, spool.Config{Path: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	// No provider from the environment: description stays unavailable.
	if err := kinds.Register(e, &kinds.Config{Getenv: func(string) string { return "" }}); err != nil {
		t.Fatalf("Register: %v", err)
	}
	infos := map[string]spool.KindInfo{}
	for _, info := range e.Kinds(ctx) {
		infos[info.Kind] = info
	}
	for _, k := range []string{"ingest", "http", "image", "workflow", "conditions"} {
		if info := infos[k]; !info.Available || info.Spec == nil {
			t.Errorf("%s: %+v, want available with its spec", k, info)
		}
	}
	_, ffErr := exec.LookPath("ffmpeg")
	for _, k := range mediaKinds {
		info := infos[k]
		if info.Spec == nil || (ffErr == nil) != info.Available || !info.Available && !strings.Contains(info.Reason, "install ffmpeg") {
			t.Errorf("%s: %+v, want available exactly when ffmpeg is installed, else saying to install it", k, info)
		}
	}
	for _, k := range notImplemented {
		if info := infos[k]; info.Available || !strings.Contains(info.Reason, "no handler registered") {
			t.Errorf("%s: %+v, want unavailable: no handler registered", k, info)
		}
	}
	if want := len(notImplemented) + len(mediaKinds) + len(providerKinds) + 5; len(infos) != want {
		t.Errorf("Kinds lists %d kinds, want the %d built-in ones", len(infos), want)
	}

	if err := kinds.Register(e, nil); !errors.Is(err, spool.ErrDuplicateKind) ||
		!strings.Contains(err.Error(), "ingest") || !strings.Contains(err.Error(), "http") {
		t.Errorf("second Register = %v, want ErrDuplicateKind for ingest and http", err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := kinds.Register(e, nil); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("Register after Start = %v, want an error: engine already started", err)
	}
	_, err = e.Create(ctx, spool.Request{Kind: spool.KindDescription, URL: "https://example.com/a.mp4"})
	if !errors.Is(err, spool.ErrKindUnavailable) {
		t.Errorf("Create(description) = %v, want ErrKindUnavailable", err)
	}
}

// TestWithoutFFprobe: with no ffprobe in PATH, DefaultProber falls back to
// spool.BasicProber, an FFprobeProber says how to fix it, and the kinds
// Register registers, which need no outside program, stay available.
// Not parallel: it changes PATH.
func TestWithoutFFprobe(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	ctx := context.Background()

	p := kinds.DefaultProber()
	if _, ok := p.(*kinds.FFprobeProber); ok {
		t.Errorf("DefaultProber() = %T without ffprobe, want spool.BasicProber", p)
	}
	pic := filepath.Join(t.TempDir(), "pic.png")
	if err := os.WriteFile(pic, pngBytes(t, 4, 2), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := p.Probe(ctx, pic); err != nil || f.Type != "image/png" || f.Width != 4 {
		t.Errorf("DefaultProber().Probe = %+v, %v; want the basic prober's 4×2 image/png", f, err)
	}

	const missing = "ffprobe not found in PATH: install ffmpeg"
	ff := &kinds.FFprobeProber{}
	if err := ff.Check(ctx); err == nil || err.Error() != missing {
		t.Errorf("Check = %v, want %q", err, missing)
	}
	if _, err := ff.Probe(ctx, pic); err == nil || err.Error() != missing {
		t.Errorf("Probe = %v, want %q", err, missing)
	}
	at := &kinds.FFprobeProber{Path: "/nonexistent/ffprobe"}
	if err := at.Check(ctx); err == nil || err.Error() != "ffprobe not found at /nonexistent/ffprobe: install ffmpeg" {
		t.Errorf("Check with a Path = %v, want it to name the path", err)
	}

	e := newEngine(t, spool.Config{Prober: p}, nil)
	for _, info := range e.Kinds(ctx) {
		if (info.Kind == "ingest" || info.Kind == "http") && !info.Available {
			t.Errorf("%s unavailable without ffprobe: %s", info.Kind, info.Reason)
		}
	}
}
