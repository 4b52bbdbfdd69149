// Command intelligence speaks a sentence with espeak-ng, makes a short
// video of it with ffmpeg, and runs a workflow on it: speech, then
// subtitles from the speech step's transcript. It prints the transcript
// and the WebVTT subtitles.
//
// It transcribes with the OpenAI-compatible endpoint that OPENAI_API_KEY
// (and OPENAI_BASE_URL, for a local whisper.cpp server) configure, else
// offline with pocketsphinx, whose accuracy is low: expect some of the
// words, not all. It needs ffmpeg and espeak-ng, and without a configured
// endpoint pocketsphinx and pocketsphinx-en-us (all Debian packages).
//
//	go run ./examples/intelligence
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

const sentence = "One two three. The weather is nice today, and we are going for a walk in the park."

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "spool-intelligence")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	clip, err := makeClip(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	engine, err := spool.Open(ctx, spool.Config{Path: filepath.Join(dir, "spool.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close(context.Background())
	if err := kinds.Register(engine, nil); err != nil {
		log.Fatal(err)
	}
	for _, k := range engine.Kinds(ctx) {
		if k.Kind == "speech" && !k.Available {
			log.Fatalf("speech is unavailable: %s", k.Reason)
		}
	}
	if err := engine.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if os.Getenv("OPENAI_API_KEY") != "" || os.Getenv("OPENAI_BASE_URL") != "" {
		fmt.Println("transcribing with the OpenAI-compatible endpoint")
	} else {
		fmt.Println("transcribing offline with pocketsphinx (low accuracy)")
	}

	f, err := os.Open(clip)
	if err != nil {
		log.Fatal(err)
	}
	in, err := engine.CreateFile(ctx, f, &spool.FileParams{Filename: "clip.mp4"})
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	wf, err := engine.Create(ctx, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: []spool.Step{
		{Kind: "speech", Next: []spool.Step{{Kind: "subtitles", Options: map[string]any{"format": "vtt"}}}}}})
	if err != nil {
		log.Fatal(err)
	}
	if wf, err = engine.Wait(ctx, wf.ID); err != nil {
		log.Fatal(err)
	}
	page, err := engine.List(ctx, &spool.ListParams{ParentID: wf.ID, Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	steps := map[string]*spool.Task{}
	for _, step := range page.Tasks {
		if step.Status != spool.StatusCompleted {
			log.Fatalf("%s step %s: %s", step.Kind, step.Status, step.Error)
		}
		steps[step.Kind] = step
	}
	var speech struct{ Text string }
	if err := json.Unmarshal(steps["speech"].Output, &speech); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("said:  %q\nheard: %q\n\n", sentence, speech.Text)
	var track spool.File // the subtitles step's output is the track's File
	if err := json.Unmarshal(steps["subtitles"].Output, &track); err != nil {
		log.Fatal(err)
	}
	_, r, err := engine.OpenFile(ctx, track.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	io.Copy(os.Stdout, r)
}

// makeClip speaks the sentence into a wav with espeak-ng and muxes it with
// a test picture into an mp4, as a camera's video would come.
func makeClip(ctx context.Context, dir string) (string, error) {
	wav, clip := filepath.Join(dir, "speech.wav"), filepath.Join(dir, "clip.mp4")
	if out, err := exec.CommandContext(ctx, "espeak-ng", "-s", "130", "-w", wav, sentence).CombinedOutput(); err != nil {
		return "", fmt.Errorf("espeak-ng (apt-get install espeak-ng): %v: %s", err, out)
	}
	out, err := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", wav,
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-shortest", "-pix_fmt", "yuv420p", "-c:a", "aac", clip).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ffmpeg (apt-get install ffmpeg): %v: %s", err, out)
	}
	return clip, nil
}
