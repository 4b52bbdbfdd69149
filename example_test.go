package spool_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/spoolrun/spool"
)

// Example is the README's snippet: register a handler, start the engine,
// create a task and wait for it.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "spool-example")
	defer os.RemoveAll(dir)

	engine, err := spool.Open(ctx, spool.Config{Path: filepath.Join(dir, "spool.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close(ctx)

	engine.Register("greet", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		job.Progress(50)
		name, _ := job.String("name") // "" when the option is absent
		return job.SetOutput(map[string]string{"greeting": "hello, " + name})
	}))
	if err := engine.Start(ctx); err != nil {
		log.Fatal(err)
	}

	task, err := engine.Create(ctx, spool.Request{Kind: "greet", Options: map[string]any{"name": "world"}})
	if err != nil {
		log.Fatal(err)
	}
	task, err = engine.Wait(ctx, task.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.Status, string(task.Output))
	// Output: completed {"greeting":"hello, world"}
}

// ExampleValidationError shows a rejected request: nothing is stored and
// the error names the field.
func ExampleValidationError() {
	ctx := context.Background()
	engine, _ := spool.Open(ctx, spool.Config{Path: ":memory:"})
	defer engine.Close(ctx)

	_, err := engine.Create(ctx, spool.Request{Kind: "image", URL: "https://example.com/a.mp4",
		Options: map[string]any{"format": "bmp"}})
	fmt.Println(err)
	// Output: spool: invalid format: must be one of jpeg, png, webp, avif, gif
}
