// Command workflow runs a workflow of the hosted API's shape (a video
// transcode whose output is transcribed and subtitled and thumbnailed, a
// condition on the input's duration, a final http call) with stand-in
// handlers: no ffmpeg, no network. It prints the tree as it progresses,
// then the finished workflow task's JSON.
//
//	go run ./examples/workflow
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// tree is the workflow, as a client of the hosted API would send it.
const tree = `[
  { "kind": "video", "width": 1280, "ref": "web",
    "next": [ { "kind": "speech", "ref": "words", "next": [ { "kind": "subtitles", "format": "vtt" } ] },
              { "kind": "thumbnails", "count": 9 } ] },
  { "kind": "conditions",
    "conditions": [ { "prop": "duration", "operator": "gt", "value": "60" } ],
    "next": [ { "kind": "chapters" } ] },
  { "kind": "http", "url": "https://hooks.example.com/done", "method": "POST" }
]`

func main() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "spool-workflow")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	engine, err := spool.Open(ctx, spool.Config{
		Path: filepath.Join(dir, "spool.db"),
		// Stand in for ffprobe: every file is a 90-second video.
		Prober: spool.ProberFunc(func(ctx context.Context, path string) (*spool.File, error) {
			f, err := spool.BasicProber().Probe(ctx, path)
			if err == nil && f.Type == "video/mp4" {
				f.Kind, f.Duration, f.Width, f.Height = "video", 90, 1920, 1080
			}
			return f, err
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close(ctx)

	// Stand-in handlers: each works a little and writes an output file,
	// which the steps after it get as their input.
	for kind, object := range map[string]string{"video": "source", "speech": "intelligence",
		"thumbnails": "track", "chapters": "track"} {
		engine.Register(kind, pretend(kind, object))
	}
	engine.Register("subtitles", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		words, err := job.Upstream(ctx, "words") // the speech step before this one
		if err != nil {
			return err
		}
		var transcript spool.File
		if err := json.Unmarshal(words.Output, &transcript); err != nil {
			return err
		}
		work(job)
		_, err = job.CreateFile(ctx, strings.NewReader("WEBVTT\n\n00:00.000 --> 00:02.000\nfrom "+transcript.ID+"\n"),
			&spool.File{Object: "track", Filename: "subtitles.vtt"})
		return err
	}))
	engine.Register("http", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		work(job) // a real http handler would POST to job.Task.URL
		return job.SetOutput(map[string]any{"status": 200, "url": job.Task.URL})
	}))
	if err := engine.Start(ctx); err != nil {
		log.Fatal(err)
	}

	input, err := engine.CreateFile(ctx, strings.NewReader("pretend this is a video"), &spool.FileParams{Filename: "talk.mp4"})
	if err != nil {
		log.Fatal(err)
	}
	var steps []spool.Step
	if err := json.Unmarshal([]byte(tree), &steps); err != nil {
		log.Fatal(err)
	}
	wf, err := engine.Create(ctx, spool.Request{Kind: spool.KindWorkflow, FileID: input.ID, Workflow: steps})
	if err != nil {
		log.Fatal(err)
	}

	// Print the tree whenever it changes, until the workflow finishes.
	last := ""
	for {
		t, err := engine.Get(ctx, wf.ID)
		if err != nil {
			log.Fatal(err)
		}
		if s := render(t); s != last {
			fmt.Println(s)
			last = s
		}
		if t.Status.Terminal() {
			b, _ := json.MarshalIndent(t, "", "  ")
			fmt.Println(string(b))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pretend is a stand-in handler of kind that writes a file of object.
func pretend(kind, object string) spool.HandlerFunc {
	return func(ctx context.Context, job *spool.Job) error {
		work(job)
		name := kind + ".out"
		if kind == "video" {
			name = "web.mp4"
		}
		_, err := job.CreateFile(ctx, strings.NewReader(kind+" output"),
			&spool.File{Object: object, Filename: name})
		return err
	}
}

// work pretends to work for a while, reporting progress.
func work(job *spool.Job) {
	for p := 25; p <= 100; p += 25 {
		time.Sleep(time.Duration(20+rand.IntN(40)) * time.Millisecond)
		job.Progress(p)
	}
}

// render draws the workflow's steps as an indented tree.
func render(t *spool.Task) string {
	var b strings.Builder
	fmt.Fprintf(&b, "workflow %s  %-10s %3d%%\n", t.ID, t.Status, t.Progress)
	for _, s := range t.Workflow {
		depth := strings.Count(s.Step, ".next")
		name := s.Kind
		if s.Ref != "" {
			name += " (" + s.Ref + ")"
		}
		fmt.Fprintf(&b, "  %s%-*s %-10s %3d%%\n", strings.Repeat("  ", depth), 24-2*depth, name, s.Status, s.Progress)
	}
	return strings.TrimRight(b.String(), "\n")
}
