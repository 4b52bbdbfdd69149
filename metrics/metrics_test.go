package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/metrics"
)

func open(t *testing.T) *spool.Engine {
	t.Helper()
	e, err := spool.Open(context.Background(), spool.Config{Path: filepath.Join(t.TempDir(), "spool.db"),
		Backoff: func(int) time.Duration { return time.Millisecond }, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// TestMetrics runs tasks of every outcome and reads the metrics a scrape
// serves.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	h := metrics.Handler(e)
	tries := 0
	e.Register("m", spool.HandlerFunc(func(ctx context.Context, j *spool.Job) error {
		switch j.Task.Options["do"] {
		case "fail":
			return spool.Permanent(errors.New("no"))
		case "retry":
			if tries++; tries == 1 {
				return errors.New("again")
			}
		}
		return nil
	}))
	// A kind with no handler stays pending: the queue's depth and age.
	e.Register("later", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, do := range []string{"ok", "fail", "retry"} {
		task, err := e.Create(ctx, spool.Request{Kind: "m", Options: map[string]any{"do": do}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Wait(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
	}
	future, err := e.Create(ctx, spool.Request{Kind: "later", RunAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cancel(ctx, future.ID); err != nil {
		t.Fatal(err)
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		`spool_tasks_created_total{kind="m"} 3`,
		`spool_tasks_created_total{kind="later"} 1`,
		`spool_tasks_finished_total{kind="m",status="completed"} 2`,
		`spool_tasks_finished_total{kind="m",status="failed"} 1`,
		`spool_tasks_finished_total{kind="later",status="cancelled"} 1`,
		`spool_task_retries_total{kind="m"} 1`,
		`spool_handler_duration_seconds_count{kind="m"} 4`,
		`spool_tasks{kind="m",status="completed"} 2`,
		`spool_tasks{kind="later",status="cancelled"} 1`,
		`spool_queue_depth{kind="m"} 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if n := histogramCount(t, text, "spool_store_commit_writes_count"); n == 0 {
		t.Errorf("no commit observed:\n%s", text)
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
}

// TestMetricsQueue checks the gauges of pending work: depth and age of the
// oldest pending task, by kind.
func TestMetricsQueue(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	c := metrics.New(e)
	e.Register("q", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	// Not started: tasks stay pending.
	for range 3 {
		if _, err := e.Create(ctx, spool.Request{Kind: "q"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if got := testutil.ToFloat64(gauge(c, "spool_queue_depth")); got != 3 {
		t.Errorf("queue depth %v, want 3", got)
	}
	if age := testutil.ToFloat64(gauge(c, "spool_oldest_pending_age_seconds")); age < 0.02 || age > 60 {
		t.Errorf("oldest pending age %v s", age)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("pedantic gather: %v", err)
	}
}

// gauge is a collector of c's metric of that name alone.
func gauge(c *metrics.Collector, name string) prometheus.Collector {
	return filter{c, name}
}

type filter struct {
	c    *metrics.Collector
	name string
}

func (f filter) Describe(ch chan<- *prometheus.Desc) { f.c.Describe(ch) }
func (f filter) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}

// histogramCount reads a sample's value from exposition text.
func histogramCount(t *testing.T, text, name string) int {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var n int
			for _, r := range v {
				if r < '0' || r > '9' {
					break
				}
				n = n*10 + int(r-'0')
			}
			return n
		}
	}
	return 0
}

// BenchmarkDrain drains no-op tasks with and without a Collector
// observing the engine, to show what the metrics cost:
//
//	go test -run X -bench Drain ./metrics
func BenchmarkDrain(b *testing.B) {
	for _, observed := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "metrics"}[observed]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			e, err := spool.Open(ctx, spool.Config{Path: filepath.Join(b.TempDir(), "spool.db"), Concurrency: 8})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close(ctx)
			if observed {
				prometheus.NewRegistry().MustRegister(metrics.New(e))
			}
			done := make(chan struct{}, b.N)
			e.Register("noop", spool.HandlerFunc(func(context.Context, *spool.Job) error {
				done <- struct{}{}
				return nil
			}))
			reqs := make([]spool.Request, b.N)
			for i := range reqs {
				reqs[i] = spool.Request{Kind: "noop"}
			}
			if _, err := e.CreateMany(ctx, reqs); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			if err := e.Start(ctx); err != nil {
				b.Fatal(err)
			}
			for range b.N {
				<-done
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
