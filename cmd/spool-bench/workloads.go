package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spoolrun/spool"
	_ "modernc.org/sqlite"
)

var ctx = context.Background()

func noop(context.Context, *spool.Job) error { return nil }

// noopRequest is the request of every task the workloads create
// (-payload adds options to it).
var noopRequest = spool.Request{Kind: "noop"}

// open opens a client engine on a fresh file database.
func open(o options, name string, cfg spool.Config) (*spool.Engine, error) {
	path := filepath.Join(o.Dir, name+".db")
	store, err := spool.OpenSQLite(ctx, path, &spool.SQLiteOptions{Synchronous: o.Sync})
	if err != nil {
		return nil, err
	}
	cfg.Store = store
	if cfg.Concurrency == 0 {
		cfg.Concurrency = o.Concurrency
	}
	e, err := spool.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e.Register("noop", spool.HandlerFunc(noop))
	return e, nil
}

func closeAll(e *spool.Engine) error {
	err := e.Close(ctx)
	if cerr := e.Store().Close(); err == nil {
		err = cerr
	}
	return err
}

// percentiles returns p50 and p99 of durations, in nanoseconds.
func percentiles(ds []time.Duration) (float64, float64) {
	slices.Sort(ds)
	at := func(p float64) float64 { return float64(ds[min(int(p*float64(len(ds))), len(ds)-1)]) }
	return at(0.50), at(0.99)
}

func runCreate(o options) (*result, error) {
	e, err := open(o, "create", spool.Config{})
	if err != nil {
		return nil, err
	}
	defer closeAll(e)
	lat := make([]time.Duration, o.N)
	start := time.Now()
	for i := range o.N {
		t0 := time.Now()
		if _, err := e.Create(ctx, noopRequest); err != nil {
			return nil, err
		}
		lat[i] = time.Since(t0)
	}
	el := time.Since(start)
	p50, p99 := percentiles(lat)
	return &result{N: o.N, Figures: map[string]float64{"tasks/s": float64(o.N) / el.Seconds(), "p50": p50, "p99": p99}}, nil
}

func runCreate8(o options) (*result, error) {
	e, err := open(o, "create8", spool.Config{})
	if err != nil {
		return nil, err
	}
	defer closeAll(e)
	const g = 8
	lat := make([]time.Duration, o.N)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for w := range g {
		wg.Go(func() {
			for i := w; i < o.N; i += g {
				t0 := time.Now()
				if _, err := e.Create(ctx, noopRequest); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	p50, p99 := percentiles(lat)
	return &result{N: o.N, Figures: map[string]float64{"tasks/s": float64(o.N) / el.Seconds(), "p50": p50, "p99": p99}}, nil
}

func runCreateMany(o options) (*result, error) {
	e, err := open(o, "createmany", spool.Config{})
	if err != nil {
		return nil, err
	}
	defer closeAll(e)
	n := max(o.N, 100_000)
	start := time.Now()
	if err := createMany(e, n); err != nil {
		return nil, err
	}
	el := time.Since(start)
	return &result{N: n, Figures: map[string]float64{"tasks/s": float64(n) / el.Seconds()}}, nil
}

func createMany(e *spool.Engine, n int) error {
	return createManyOf(e, n, noopRequest)
}

// createManyOf creates n tasks of req with CreateMany, 1,000 at a time.
func createManyOf(e *spool.Engine, n int, req spool.Request) error {
	reqs := make([]spool.Request, 1000)
	for i := range reqs {
		reqs[i] = req
	}
	for done := 0; done < n; done += len(reqs) {
		if _, err := e.CreateMany(ctx, reqs[:min(len(reqs), n-done)]); err != nil {
			return err
		}
	}
	return nil
}

func runDrain(o options) (*result, error) {
	rate, err := drainCounted(o, "drain", o.N, spool.Config{}, nil)
	if err != nil {
		return nil, err
	}
	return &result{N: o.N, Figures: map[string]float64{"tasks/s": rate}}, nil
}

// drainCounted creates n no-op tasks in the database name (a file in
// o.Dir, or a path), each on one stored input file with o.Input, then
// starts the engine, with an optional event reader, and returns tasks/s
// from Start to the last committed completion.
func drainCounted(o options, name string, n int, cfg spool.Config, reader func(e *spool.Engine, stop <-chan struct{}) func()) (float64, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(o.Dir, name+".db")
	}
	store, err := spool.OpenSQLite(ctx, path, &spool.SQLiteOptions{Synchronous: o.Sync})
	if err != nil {
		return 0, err
	}
	defer store.Close()
	cfg.Store = store
	cfg.Concurrency = o.Concurrency
	e, err := spool.Open(ctx, cfg)
	if err != nil {
		return 0, err
	}
	var done atomic.Int64
	finished := make(chan struct{})
	e.Register("noop", spool.HandlerFunc(func(context.Context, *spool.Job) error {
		if done.Add(1) == int64(n) {
			close(finished)
		}
		return nil
	}))
	if err := createMany(e, n); err != nil {
		return 0, err
	}
	stop := make(chan struct{})
	wait := func() {}
	if reader != nil {
		wait = reader(e, stop)
	}
	start := time.Now()
	if err := e.Start(ctx); err != nil {
		return 0, err
	}
	<-finished
	// The last handler returned; Close waits for its completion to commit.
	if err := e.Close(ctx); err != nil {
		return 0, err
	}
	el := time.Since(start)
	close(stop)
	wait()
	return float64(n) / el.Seconds(), nil
}

func runDrainOnEvent(o options) (*result, error) {
	base, err := drainCounted(o, "base", o.N, spool.Config{}, nil)
	if err != nil {
		return nil, err
	}
	var events atomic.Int64
	rate, err := drainCounted(o, "onevent", o.N, spool.Config{OnEvent: func(spool.Event) { events.Add(1) }}, nil)
	if err != nil {
		return nil, err
	}
	return &result{N: o.N, Figures: map[string]float64{"tasks/s": rate, "ratio": rate / base},
		Note: fmt.Sprintf("%d events delivered; plain drain %.0f tasks/s", events.Load(), base)}, nil
}

func runDrainSubscribe(o options) (*result, error) {
	base, err := drainCounted(o, "base", o.N, spool.Config{}, nil)
	if err != nil {
		return nil, err
	}
	var events atomic.Int64
	rate, err := drainCounted(o, "subscribe", o.N, spool.Config{}, func(e *spool.Engine, stop <-chan struct{}) func() {
		sctx, cancel := context.WithCancel(ctx)
		ch, err := e.Subscribe(sctx)
		if err != nil {
			panic(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range ch {
				events.Add(1)
			}
		}()
		return func() { cancel(); <-done }
	})
	if err != nil {
		return nil, err
	}
	return &result{N: o.N, Figures: map[string]float64{"tasks/s": rate, "ratio": rate / base},
		Note: fmt.Sprintf("%d events read during the drain; plain drain %.0f tasks/s", events.Load(), base)}, nil
}

func runMemory(o options) (*result, error) {
	n := 100_000
	rate, err := drainCounted(o, "memory", n, spool.Config{}, nil)
	if err != nil {
		return nil, err
	}
	return &result{N: n, Figures: map[string]float64{"tasks/s": rate}}, nil
}

func runLatency(o options) (*result, error) {
	path := filepath.Join(o.Dir, "latency.db")
	store, err := spool.OpenSQLite(ctx, path, &spool.SQLiteOptions{Synchronous: o.Sync})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	e, err := spool.Open(ctx, spool.Config{Store: store, Concurrency: o.Concurrency})
	if err != nil {
		return nil, err
	}
	started := make(chan time.Time, 1)
	e.Register("noop", spool.HandlerFunc(func(context.Context, *spool.Job) error {
		started <- time.Now()
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	defer e.Close(ctx)
	lat := make([]time.Duration, o.LatencyN)
	for i := range lat {
		t0 := time.Now()
		tk, err := e.Create(ctx, noopRequest)
		if err != nil {
			return nil, err
		}
		lat[i] = (<-started).Sub(t0)
		if _, err := e.Wait(ctx, tk.ID); err != nil { // idle again before the next
			return nil, err
		}
	}
	p50, p99 := percentiles(lat)
	return &result{N: o.LatencyN, Figures: map[string]float64{"p50": p50, "p99": p99}}, nil
}

// runScale fills the table with finished tasks, then measures a drain, Get
// and List against it, and compares the drain with an empty table's.
func runScale(o options) (*result, error) {
	base, err := drainCounted(o, "scale-base", o.N, spool.Config{}, nil)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(o.Dir, "scale.db")
	store, err := spool.OpenSQLite(ctx, path, &spool.SQLiteOptions{Synchronous: o.Sync})
	if err != nil {
		return nil, err
	}
	e, err := spool.Open(ctx, spool.Config{Store: store})
	if err != nil {
		return nil, err
	}
	e.Register("noop", spool.HandlerFunc(noop))
	if err := createMany(e, o.ScaleRows); err != nil {
		return nil, err
	}
	e.Close(ctx)
	store.Close()
	// Finish them in bulk behind spool's back: a million drains would take
	// longer than the measurement.
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(`UPDATE tasks SET status = 'completed', progress = 100, due = NULL, attempt = 1`); err != nil {
		return nil, err
	}
	// One in 32 failed: a status that is not most of the table.
	if _, err := db.Exec(`UPDATE tasks SET status = 'failed', error = 'x' WHERE substr(id, -1) = 'Z'`); err != nil {
		return nil, err
	}
	var ids []string
	rows, err := db.Query("SELECT id FROM tasks")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	db.Close()

	full, err := drainCounted(o, path, o.N, spool.Config{}, nil)
	if err != nil {
		return nil, err
	}
	store, err = spool.OpenSQLite(ctx, path, &spool.SQLiteOptions{Synchronous: o.Sync})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	e, err = spool.Open(ctx, spool.Config{Store: store})
	if err != nil {
		return nil, err
	}
	gets := make([]time.Duration, 5000)
	for i := range gets {
		id := ids[rand.IntN(len(ids))]
		t0 := time.Now()
		if _, err := e.Get(ctx, id); err != nil {
			return nil, err
		}
		gets[i] = time.Since(t0)
	}
	// Pages 1-50 of the completed tasks (most of the table) and of the
	// failed ones (a few), each with its total.
	list := func(status spool.Status, least int) ([]time.Duration, error) {
		pages := max(1, min(50, least/20)) // full pages only, however few rows
		lat := make([]time.Duration, 500)
		for i := range lat {
			t0 := time.Now()
			page, err := e.List(ctx, &spool.ListParams{Status: status, Page: 1 + rand.IntN(pages), Limit: 20})
			if err != nil {
				return nil, err
			}
			if page.Total < least || len(page.Tasks) != 20 {
				return nil, fmt.Errorf("list %s: %d tasks, total %d, want at least %d", status, len(page.Tasks), page.Total, least)
			}
			lat[i] = time.Since(t0)
		}
		return lat, nil
	}
	completed, err := list(spool.StatusCompleted, o.ScaleRows*9/10)
	if err != nil {
		return nil, err
	}
	failed, err := list(spool.StatusFailed, o.ScaleRows/64)
	if err != nil {
		return nil, err
	}
	g50, g99 := percentiles(gets)
	l50, l99 := percentiles(completed)
	f50, f99 := percentiles(failed)
	return &result{N: o.N, Figures: map[string]float64{"tasks/s": full, "ratio": full / base,
		"get_p50": g50, "get_p99": g99, "list_p50": l50, "list_p99": l99, "listfailed_p50": f50, "listfailed_p99": f99},
		Note: fmt.Sprintf("%d finished rows, 1/32 failed; empty-table drain %.0f tasks/s; list = a page of 20 (pages 1-50) by status with total", o.ScaleRows, base)}, nil
}

// runWorkflow drains workflows of 10 parallel no-op steps against a drain
// of as many plain no-op tasks as there are steps in all, and against one
// of plain tasks that carry an input file, as every step does (its
// workflow's).
func runWorkflow(o options) (*result, error) {
	const steps = 10
	n := o.N / steps * steps
	o.Input = false
	base, err := drainCounted(o, "plain", n, spool.Config{}, nil)
	if err != nil {
		return nil, err
	}
	// A step is created while its workflow runs; a plain task's creation
	// is outside drainCounted's timing. Time it too, for the fair ratio.
	pe, err := open(o, "plain-create", spool.Config{})
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := createMany(pe, n); err != nil {
		return nil, err
	}
	plainCreate := time.Since(t0)
	if err := closeAll(pe); err != nil {
		return nil, err
	}
	plainTotal := float64(n) / (plainCreate.Seconds() + float64(n)/base)
	store, err := spool.OpenSQLite(ctx, filepath.Join(o.Dir, "workflow.db"), &spool.SQLiteOptions{Synchronous: o.Sync})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	e, err := spool.Open(ctx, spool.Config{Store: store, Concurrency: o.Concurrency})
	if err != nil {
		return nil, err
	}
	var done atomic.Int64
	finished := make(chan struct{})
	e.Register("noop", spool.HandlerFunc(func(context.Context, *spool.Job) error {
		if done.Add(1) == int64(n) {
			close(finished)
		}
		return nil
	}))
	in, err := e.CreateFile(ctx, strings.NewReader("input"), nil)
	if err != nil {
		return nil, err
	}
	req := spool.Request{Kind: spool.KindWorkflow, FileID: in.ID, Workflow: make([]spool.Step, steps)}
	for i := range req.Workflow {
		req.Workflow[i] = spool.Step{Kind: "noop"}
	}
	reqs := make([]spool.Request, 100)
	for i := range reqs {
		reqs[i] = req
	}
	t0 = time.Now()
	for created := 0; created < n/steps; created += len(reqs) {
		if _, err := e.CreateMany(ctx, reqs[:min(len(reqs), n/steps-created)]); err != nil {
			return nil, err
		}
	}
	wfCreate := time.Since(t0)
	start := time.Now()
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	<-finished
	// Close waits for the last outcomes, whose hooks finish the workflows.
	if err := e.Close(ctx); err != nil {
		return nil, err
	}
	el := time.Since(start)
	st, err := store.Stats(ctx)
	if err != nil {
		return nil, err
	}
	if got := st.ByKind[spool.KindWorkflow][spool.StatusCompleted]; got != n/steps {
		return nil, fmt.Errorf("%d of %d workflows completed", got, n/steps)
	}
	rate := float64(n) / el.Seconds()
	total := float64(n) / (el + wfCreate).Seconds()
	// Last, so that the workflow drain runs where it ran before this
	// drain was added: a drain run after others in one process measured
	// lower (three pairs).
	withInput := o
	withInput.Input = true
	baseInput, err := drainCounted(withInput, "plain-input", n, spool.Config{}, nil)
	if err != nil {
		return nil, err
	}
	return &result{N: n, Figures: map[string]float64{"tasks/s": rate, "ratio": rate / base, "of/input": rate / baseInput},
		Note: fmt.Sprintf("%.0f workflows of %d steps/s; steps/s against plain tasks/s (%.0f), of/input against plain tasks with an input file (%.0f/s); created and run: %.0f steps/s, %.0f%% of plain tasks created and run (%.0f/s)",
			float64(n/steps)/el.Seconds(), steps, base, baseInput, total, 100*total/plainTotal, plainTotal)}, nil
}
