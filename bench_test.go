package spool_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spoolrun/spool"
)

// The hot paths, for benchstat; cmd/spool-bench measures whole workloads.

func benchEngine(b *testing.B, cfg spool.Config) *spool.Engine {
	b.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(b.TempDir(), "bench.db")
	}
	e, err := spool.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func BenchmarkCreate(b *testing.B) {
	e := benchEngine(b, spool.Config{})
	e.Register("noop", spool.HandlerFunc(nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Create(ctx, spool.Request{Kind: "noop"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateParallel(b *testing.B) {
	e := benchEngine(b, spool.Config{})
	e.Register("noop", spool.HandlerFunc(nil))
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(4) // 8 goroutines on 2 CPUs
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Create(ctx, spool.Request{Kind: "noop"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCreateMany1000(b *testing.B) {
	e := benchEngine(b, spool.Config{})
	e.Register("noop", spool.HandlerFunc(nil))
	reqs := make([]spool.Request, 1000)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: "noop"}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.CreateMany(ctx, reqs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(reqs))/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkDrain claims and completes pre-created no-op tasks with 8
// workers: one op is one task run through claim, handler and completion.
func BenchmarkDrain(b *testing.B) {
	e := benchEngine(b, spool.Config{Concurrency: 8})
	var done atomic.Int64
	finished := make(chan struct{})
	n := int64(b.N)
	e.Register("noop", spool.HandlerFunc(func(context.Context, *spool.Job) error {
		if done.Add(1) == n {
			close(finished)
		}
		return nil
	}))
	reqs := make([]spool.Request, 1000)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: "noop"}
	}
	timedDrain(b, e, reqs, b.N, finished)
}

// timedDrain creates count tasks of reqs (CreateMany of len(reqs) at a
// time), then times Start until finished is closed, and Close, which waits
// for the last outcomes (and their hooks) to commit.
func timedDrain(b *testing.B, e *spool.Engine, reqs []spool.Request, count int, finished <-chan struct{}) {
	ctx := context.Background()
	for left := count; left > 0; left -= len(reqs) {
		if _, err := e.CreateMany(ctx, reqs[:min(left, len(reqs))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	if err := e.Start(ctx); err != nil {
		b.Fatal(err)
	}
	<-finished
	if err := e.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWorkflowDrain runs pre-created workflows of 10 parallel no-op
// steps with 8 workers: one op is one step, created by its workflow's
// start and run through claim, handler, completion and its workflow's
// advance. Compare ns/op with BenchmarkDrain's.
func BenchmarkWorkflowDrain(b *testing.B) {
	const steps = 10
	ctx := context.Background()
	e := benchEngine(b, spool.Config{Concurrency: 8})
	n := int64((b.N + steps - 1) / steps * steps)
	var done atomic.Int64
	finished := make(chan struct{})
	e.Register("noop", spool.HandlerFunc(func(context.Context, *spool.Job) error {
		if done.Add(1) == n {
			close(finished)
		}
		return nil
	}))
	in, err := e.CreateFile(ctx, strings.NewReader("input"), nil)
	if err != nil {
		b.Fatal(err)
	}
	req := spool.Request{Kind: spool.KindWorkflow, FileID: in.ID, Workflow: make([]spool.Step, steps)}
	for i := range req.Workflow {
		req.Workflow[i] = spool.Step{Kind: "noop"}
	}
	reqs := make([]spool.Request, 100)
	for i := range reqs {
		reqs[i] = req
	}
	timedDrain(b, e, reqs, int(n/steps), finished)
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	e := benchEngine(b, spool.Config{})
	e.Register("noop", spool.HandlerFunc(nil))
	var ids []string
	for i := range 10 {
		reqs := make([]spool.Request, 1000)
		for j := range reqs {
			reqs[j] = spool.Request{Kind: "noop", Ref: fmt.Sprint(i)}
		}
		ts, err := e.CreateMany(ctx, reqs)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range ts {
			ids = append(ids, t.ID)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := e.Get(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

func BenchmarkListByStatus(b *testing.B) {
	ctx := context.Background()
	e := benchEngine(b, spool.Config{})
	e.Register("noop", spool.HandlerFunc(nil))
	reqs := make([]spool.Request, 1000)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: "noop"}
	}
	for range 10 {
		if _, err := e.CreateMany(ctx, reqs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	page := 0
	for b.Loop() {
		p, err := e.List(ctx, &spool.ListParams{Status: spool.StatusPending, Page: 1 + page%50, Limit: 20})
		if err != nil || p.Total != 10000 {
			b.Fatal(p, err)
		}
		page++
	}
}
