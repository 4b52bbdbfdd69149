// Command media runs the media kinds on a video: it transcodes it
// (video), extracts its sound (audio), makes a thumbnails track and a
// still image, and prints each output File as JSON. It needs ffmpeg and ffprobe in PATH.
//
//	go run ./examples/media              # makes a 5 s test clip with ffmpeg
//	go run ./examples/media clip.mov     # or uses your file
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

func main() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "spool-media")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	input := filepath.Join(dir, "clip.mp4")
	if len(os.Args) > 1 {
		input = os.Args[1]
	} else if err := makeClip(ctx, input); err != nil {
		log.Fatal(err)
	}

	// No Prober in the Config: registering the media kinds makes the
	// engine probe files with ffprobe.
	engine, err := spool.Open(ctx, spool.Config{Path: filepath.Join(dir, "spool.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close(ctx)
	if err := kinds.Register(engine, nil); err != nil {
		log.Fatal(err)
	}
	if err := engine.Start(ctx); err != nil {
		log.Fatal(err)
	}
	for _, k := range engine.Kinds(ctx) {
		if slices.Contains([]string{"video", "audio", "thumbnails"}, k.Kind) && !k.Available {
			log.Fatalf("%s: %s", k.Kind, k.Reason)
		}
	}

	f, err := os.Open(input)
	if err != nil {
		log.Fatal(err)
	}
	in, err := engine.CreateFile(ctx, f, &spool.FileParams{Filename: filepath.Base(input)})
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	show("input", in)

	requests := []spool.Request{
		{Kind: "video", Options: map[string]any{"width": 640, "format": "webm"}},
		{Kind: "video", Options: map[string]any{"height": 240, "start": 1, "end": 3}},
		{Kind: "audio", Options: map[string]any{"format": "opus", "bitrate": "64k"}},
		{Kind: "thumbnails", Options: map[string]any{"count": 9, "width": 160}},
		// A frame at 2 s, as a WebP image.
		{Kind: "image", Options: map[string]any{"start": 2, "width": 320, "format": "webp"}},
	}
	for _, req := range requests {
		req.FileID = in.ID
		start := time.Now()
		task, err := engine.Create(ctx, req)
		if err != nil {
			log.Fatal(err)
		}
		if task, err = engine.Wait(ctx, task.ID); err != nil {
			log.Fatal(err)
		}
		label := fmt.Sprintf("%s %v (%s in %.1fs)", req.Kind, req.Options, task.Status, time.Since(start).Seconds())
		if task.Status != spool.StatusCompleted {
			log.Fatalf("%s: %s", label, task.Error)
		}
		var out spool.File
		if err := json.Unmarshal(task.Output, &out); err != nil {
			log.Fatal(err)
		}
		show(label, &out)
	}
}

// makeClip writes a 5 s 1280x720 test clip with a tone.
func makeClip(ctx context.Context, path string) error {
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=5",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=5",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return errors.New("ffmpeg not found in PATH: install ffmpeg, or give a video file")
		}
		return fmt.Errorf("make a test clip: %w: %s", err, out)
	}
	return nil
}

func show(label string, f *spool.File) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\n%s:\n%s\n", label, b)
}
