// Command quickstart creates a few tasks of a custom kind, runs them with a
// handler that reports progress, and prints each event as it happens and
// the finished tasks' JSON.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/spoolrun/spool"
)

func main() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "spool-quickstart")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	engine, err := spool.Open(ctx, spool.Config{
		Path:             filepath.Join(dir, "spool.db"),
		Concurrency:      2,
		ProgressInterval: 50 * time.Millisecond,
		OnEvent: func(ev spool.Event) {
			fmt.Printf("%-16s %s  %-10s %3d%%\n", ev.Type, ev.Task.ID, ev.Task.Status, ev.Task.Progress)
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	// A custom kind: "wordcount" counts the words of its "text" option.
	engine.Register("wordcount", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		text, _ := job.Task.Options["text"].(string)
		words := 0
		inWord := false
		for i, r := range text {
			if r == ' ' {
				inWord = false
			} else if !inWord {
				inWord = true
				words++
			}
			job.Progress(100 * (i + 1) / len(text))
			time.Sleep(2 * time.Millisecond) // pretend this is slow work
		}
		return job.SetOutput(map[string]int{"words": words})
	}))
	if err := engine.Start(ctx); err != nil {
		log.Fatal(err)
	}

	texts := []string{
		"spool runs media tasks in process",
		"one SQLite file, no server",
		"every status change is an event",
	}
	var ids []string
	for _, text := range texts {
		task, err := engine.Create(ctx, spool.Request{
			Kind:    "wordcount",
			Ref:     "demo",
			Options: map[string]any{"text": text},
		})
		if err != nil {
			log.Fatal(err)
		}
		ids = append(ids, task.ID)
	}

	var done []*spool.Task
	for _, id := range ids {
		task, err := engine.Wait(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		done = append(done, task)
	}
	// Close delivers the last events before it returns.
	if err := engine.Close(ctx); err != nil {
		log.Fatal(err)
	}
	for _, task := range done {
		b, _ := json.MarshalIndent(task, "", "  ")
		fmt.Printf("%s\n", b)
	}
}
