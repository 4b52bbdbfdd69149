package spool_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

const loadDeadline = 60 * time.Second

var loadKinds = []string{"load-a", "load-b"}

// loadRace reports whether the test binary was built with -race, which
// makes the pure-Go SQLite several times slower.
func loadRace() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// loadPerCreator is how many tasks each creating goroutine makes.
func loadPerCreator() int {
	switch {
	case testing.Short():
		return 25
	case loadRace():
		return 60
	}
	return 250
}

// loadLogs keeps the warnings and errors an engine logs: these tests want
// none, not even those that never reach a caller.
type loadLogs struct {
	mu   sync.Mutex
	recs []string
}

func (l *loadLogs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(loadLogWriter{l}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type loadLogWriter struct{ l *loadLogs }

func (w loadLogWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	w.l.recs = append(w.l.recs, strings.TrimSpace(string(p)))
	return len(p), nil
}

func (l *loadLogs) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.recs...)
}

// loadErrs collects the errors of concurrent callers.
type loadErrs struct {
	mu   sync.Mutex
	errs []error
	n    atomic.Int64 // calls made
}

func (c *loadErrs) add(op string, err error) {
	c.n.Add(1)
	if err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, fmt.Errorf("%s: %w", op, err))
}

func (c *loadErrs) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, err := range c.errs {
		if i == 10 {
			t.Errorf("… and %d more errors", len(c.errs)-10)
			break
		}
		t.Errorf("call failed: %v", err)
	}
}

// loadHandled records every start of every task, by engine.
type loadHandled struct {
	mu    sync.Mutex
	runs  map[string][]int // task -> engines that started it
	perEn map[int]int
}

func (h *loadHandled) handler(engine int) spool.HandlerFunc {
	return func(ctx context.Context, job *spool.Job) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.runs == nil {
			h.runs, h.perEn = map[string][]int{}, map[int]int{}
		}
		h.runs[job.Task.ID] = append(h.runs[job.Task.ID], engine)
		h.perEn[engine]++
		return nil
	}
}

func (h *loadHandled) checkOnce(t *testing.T, ids []string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	bad := 0
	for _, id := range ids {
		if got := h.runs[id]; len(got) != 1 {
			if bad++; bad <= 10 {
				t.Errorf("task %s was started by engines %v, want exactly one start", id, got)
			}
		}
	}
	if len(h.runs) != len(ids) {
		t.Errorf("%d distinct tasks handled, want %d", len(h.runs), len(ids))
	}
}

func loadOpen(t *testing.T, cfg spool.Config, h spool.Handler) (*spool.Engine, *loadLogs) {
	t.Helper()
	logs := &loadLogs{}
	cfg.Logger = logs.logger()
	e, err := spool.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	for _, k := range loadKinds {
		e.Register(k, h)
	}
	return e, logs
}

// loadCreate creates n tasks through e, mixing Create and CreateMany and
// the two kinds, and returns their ids by kind.
func loadCreate(ctx context.Context, e *spool.Engine, n int, seed uint64, errs *loadErrs) map[string][]string {
	r := rand.New(rand.NewPCG(seed, 1))
	ids := map[string][]string{}
	for made := 0; made < n; {
		if r.IntN(3) == 0 {
			reqs := make([]spool.Request, min(1+r.IntN(10), n-made))
			for i := range reqs {
				reqs[i] = spool.Request{Kind: loadKinds[r.IntN(2)], Options: map[string]any{"i": made + i}}
			}
			tasks, err := e.CreateMany(ctx, reqs)
			errs.add("create many", err)
			for _, task := range tasks {
				ids[task.Kind] = append(ids[task.Kind], task.ID)
			}
			made += len(reqs)
			continue
		}
		task, err := e.Create(ctx, spool.Request{Kind: loadKinds[r.IntN(2)], Options: map[string]any{"i": made}})
		errs.add("create", err)
		if err == nil {
			ids[task.Kind] = append(ids[task.Kind], task.ID)
		}
		made++
	}
	return ids
}

// loadRead lists, gets and counts in a loop until ctx ends, checking that
// what it reads matches what it asked for.
func loadRead(ctx context.Context, e *spool.Engine, seed uint64, errs *loadErrs) {
	r := rand.New(rand.NewPCG(seed, 2))
	statuses := spool.Statuses()
	var seen []string
	for ctx.Err() == nil {
		switch r.IntN(4) {
		case 0: // by status
			st := statuses[r.IntN(len(statuses))]
			page, err := e.List(ctx, &spool.ListParams{Status: st, Limit: 1 + r.IntN(100)})
			if ctx.Err() != nil {
				return
			}
			errs.add("list by status", err)
			if err != nil {
				continue
			}
			for _, task := range page.Tasks {
				if task.Status != st {
					errs.add("list by status", fmt.Errorf("asked for %s tasks, got a %s one", st, task.Status))
				}
				seen = append(seen, task.ID)
			}
		case 1: // by kind, oldest first, a few pages by cursor
			p := &spool.ListParams{Kind: loadKinds[r.IntN(2)], Oldest: true, Limit: 50}
			last := ""
			for range 3 {
				page, err := e.List(ctx, p)
				if ctx.Err() != nil {
					return
				}
				errs.add("list by kind", err)
				if err != nil {
					break
				}
				for _, task := range page.Tasks {
					if task.Kind != p.Kind || task.ID <= last {
						errs.add("list by kind", fmt.Errorf("asked for %s oldest first after %s, got %s task %s",
							p.Kind, last, task.Kind, task.ID))
					}
					last = task.ID
					seen = append(seen, task.ID)
				}
				if page.Next == "" {
					break
				}
				p.After = page.Next
			}
		case 2: // a task that some list returned
			if len(seen) == 0 {
				continue
			}
			id := seen[r.IntN(len(seen))]
			task, err := e.Get(ctx, id)
			if ctx.Err() != nil {
				return
			}
			errs.add("get", err)
			if err == nil && task.ID != id {
				errs.add("get", fmt.Errorf("asked for %s, got %s", id, task.ID))
			}
		case 3:
			st, err := e.Stats(ctx)
			if ctx.Err() != nil {
				return
			}
			errs.add("stats", err)
			if err != nil {
				continue
			}
			for s, n := range st.ByStatus {
				sum := 0
				for _, byStatus := range st.ByKind {
					sum += byStatus[s]
				}
				if sum != n || n < 0 {
					errs.add("stats", fmt.Errorf("%d %s tasks in total but %d summed by kind", n, s, sum))
				}
			}
		}
		if len(seen) > 1000 {
			seen = seen[len(seen)-500:]
		}
	}
}

// loadWaitAll waits for every task and checks that it completed at its
// first attempt.
func loadWaitAll(t *testing.T, e *spool.Engine, ids []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loadDeadline)
	defer cancel()
	for _, id := range ids {
		task, err := e.Wait(ctx, id)
		if err != nil {
			st, _ := e.Stats(context.Background())
			t.Fatalf("wait %s: %v (stats %v)", id, err, st)
		}
		if task.Status != spool.StatusCompleted || task.Attempt != 1 {
			t.Errorf("task %s ended %s at attempt %d (%s), want completed at attempt 1",
				id, task.Status, task.Attempt, task.Error)
		}
	}
}

// TestLoad: 8 goroutines create while 4 workers drain, 2 readers list, get
// and count, and a subscriber follows the events. No call may fail, every
// task completes exactly once, and the subscriber sees each task's events
// in order.
func TestLoad(t *testing.T) {
	ctx := context.Background()
	const creators, readers = 8, 2
	per := loadPerCreator()

	var handled loadHandled
	e, logs := loadOpen(t, spool.Config{
		Path:         filepath.Join(t.TempDir(), "spool.db"),
		Concurrency:  4,
		PollInterval: 50 * time.Millisecond,
	}, handled.handler(0))
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}

	// The subscriber records each task's event types as they arrive.
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	sub, err := e.Subscribe(subCtx)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	var subMu sync.Mutex
	subEvents := map[string][]spool.EventType{}
	completed := 0
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for ev := range sub {
			subMu.Lock()
			subEvents[ev.Task.ID] = append(subEvents[ev.Task.ID], ev.Type)
			if ev.Type == crashEvCompleted {
				completed++
			}
			subMu.Unlock()
		}
	}()

	var errs loadErrs
	readCtx, stopReaders := context.WithCancel(ctx)
	defer stopReaders()
	var readWG sync.WaitGroup
	for i := range readers {
		readWG.Go(func() { loadRead(readCtx, e, uint64(i), &errs) })
	}

	var createWG sync.WaitGroup
	created := make([]map[string][]string, creators)
	for i := range creators {
		createWG.Go(func() { created[i] = loadCreate(ctx, e, per, uint64(100+i), &errs) })
	}
	createWG.Wait()

	var ids []string
	byKind := map[string]int{}
	for _, m := range created {
		for k, kids := range m {
			ids = append(ids, kids...)
			byKind[k] += len(kids)
		}
	}
	if len(ids) != creators*per {
		t.Errorf("%d tasks created, want %d", len(ids), creators*per)
	}
	loadWaitAll(t, e, ids)
	stopReaders()
	readWG.Wait()

	// The subscriber may lag behind: give it until the deadline.
	deadline := time.Now().Add(loadDeadline)
	for {
		subMu.Lock()
		n := completed
		subMu.Unlock()
		if n >= len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber saw %d task.completed events, want %d", n, len(ids))
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopSub()
	<-subDone
	want := []spool.EventType{crashEvCreated, crashEvProcessing, crashEvCompleted}
	bad := 0
	for _, id := range ids {
		if got := subEvents[id]; !slices.Equal(got, want) {
			if bad++; bad <= 10 {
				t.Errorf("the subscriber saw events %v for task %s, want %v", got, id, want)
			}
		}
	}
	if len(subEvents) != len(ids) {
		t.Errorf("the subscriber saw events of %d tasks, want %d", len(subEvents), len(ids))
	}

	errs.check(t)
	handled.checkOnce(t, ids)

	st, err := e.Stats(ctx)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	sum := 0
	for _, n := range st.ByStatus {
		sum += n
	}
	if sum != len(ids) || st.ByStatus[spool.StatusCompleted] != len(ids) {
		t.Errorf("stats by status %v, want all %d completed", st.ByStatus, len(ids))
	}
	for _, k := range loadKinds {
		if got := st.ByKind[k][spool.StatusCompleted]; got != byKind[k] || len(st.ByKind[k]) != 1 {
			t.Errorf("stats of kind %s %v, want %d completed", k, st.ByKind[k], byKind[k])
		}
	}
	if !st.OldestPending.IsZero() {
		t.Errorf("oldest pending %v with nothing pending", st.OldestPending)
	}
	page, err := e.List(ctx, &spool.ListParams{Status: spool.StatusCompleted, Limit: 1})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if page.Total != len(ids) {
		t.Errorf("list total of completed tasks %d, want %d", page.Total, len(ids))
	}
	if recs := logs.errors(); len(recs) > 0 {
		t.Errorf("the engine logged:\n%s", strings.Join(recs, "\n"))
	}
	t.Logf("%d tasks, %d calls", len(ids), errs.n.Load())
}

// loadHeartbeat returns the HeartbeatInterval and LeaseDuration of the
// tests in which two live engines share one file: def and 20×def, unless
// SPOOL_TEST_HEARTBEAT sets the interval. A short interval checks that a
// live engine whose heartbeat waits behind the other's writes is not taken
// for dead (on one host, only a gone process is).
func loadHeartbeat(t *testing.T, def time.Duration) (interval, lease time.Duration) {
	t.Helper()
	d := def
	if v := os.Getenv("SPOOL_TEST_HEARTBEAT"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("SPOOL_TEST_HEARTBEAT=%q is not a positive duration", v)
		}
	}
	return d, 20 * d
}

// TestTwoEnginesOneFile opens two started engines on one database file in
// one process, each creating tasks while both drain them: the engines
// contend for SQLite's write lock, which must never surface as an error,
// and no task may run twice.
func TestTwoEnginesOneFile(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "spool.db")
	const creatorsPerEngine = 4
	per := loadPerCreator()
	// A 4 s lease: at 2 s, a heartbeat held up on a machine loaded by
	// other test binaries let a lease run out, and a task ran again.
	heartbeat, lease := loadHeartbeat(t, 200*time.Millisecond)

	var handled loadHandled
	var engines []*spool.Engine
	var logs []*loadLogs
	for i := range 2 {
		e, l := loadOpen(t, spool.Config{
			Path:              db,
			Concurrency:       4,
			HeartbeatInterval: heartbeat,
			LeaseDuration:     lease,
			PollInterval:      50 * time.Millisecond,
		}, handled.handler(i))
		engines, logs = append(engines, e), append(logs, l)
	}
	for _, e := range engines {
		if err := e.Start(ctx); err != nil {
			t.Fatalf("start: %v", err)
		}
	}

	var errs loadErrs
	readCtx, stopReaders := context.WithCancel(ctx)
	defer stopReaders()
	var readWG sync.WaitGroup
	for i, e := range engines {
		readWG.Go(func() { loadRead(readCtx, e, uint64(10+i), &errs) })
	}
	var createWG sync.WaitGroup
	created := make([]map[string][]string, 2*creatorsPerEngine)
	for i := range created {
		e := engines[i%2]
		createWG.Go(func() { created[i] = loadCreate(ctx, e, per, uint64(200+i), &errs) })
	}
	createWG.Wait()

	var ids []string
	for _, m := range created {
		for _, kids := range m {
			ids = append(ids, kids...)
		}
	}
	if len(ids) != len(created)*per {
		t.Errorf("%d tasks created, want %d", len(ids), len(created)*per)
	}
	loadWaitAll(t, engines[0], ids)
	stopReaders()
	readWG.Wait()

	errs.check(t)
	handled.checkOnce(t, ids)
	handled.mu.Lock()
	t.Logf("%d tasks, %d calls; tasks handled per engine: %v", len(ids), errs.n.Load(), handled.perEn)
	// Each engine wakes itself when it creates a task, so both work.
	if len(handled.perEn) != 2 {
		t.Errorf("tasks handled per engine: %v, want both engines to do some work", handled.perEn)
	}
	handled.mu.Unlock()
	for i, e := range engines {
		st, err := e.Stats(ctx)
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		if st.ByStatus[spool.StatusCompleted] != len(ids) || len(st.ByStatus) != 1 {
			t.Errorf("engine %d: stats %v, want all %d completed", i, st.ByStatus, len(ids))
		}
	}
	for i, l := range logs {
		if recs := l.errors(); len(recs) > 0 {
			t.Errorf("engine %d logged:\n%s", i, strings.Join(recs, "\n"))
		}
	}
}
