// Package metrics exports an Engine's metrics to Prometheus.
//
// New returns a prometheus.Collector for an engine, to register in any
// registry:
//
//	prometheus.MustRegister(metrics.New(engine))
//
// and Handler serves them, with the Go runtime's and the process's, on a
// registry of its own:
//
//	mux.Handle("GET /metrics", metrics.Handler(engine))
//
// Counters and histograms count what this process did (through
// spool.Engine.Observe), from zero at its start, as Prometheus expects of
// every process; the gauges (spool_tasks, spool_queue_depth,
// spool_oldest_pending_age_seconds) are read from the store at each scrape
// and count every task in the database, whichever process made it.
//
// The metrics, each prefixed spool_:
//
//	tasks_created_total{kind}                 tasks made by Create and CreateMany
//	tasks_finished_total{kind,status}         runs ended completed, failed or error; Cancel's cancelled
//	task_retries_total{kind}                  runs that failed and will be tried again
//	handler_duration_seconds{kind}            how long handlers ran (histogram)
//	tasks{kind,status}                        tasks stored, by status
//	queue_depth{kind}                         tasks pending: due or waiting for a worker
//	oldest_pending_age_seconds{kind}          age of the oldest pending task
//	webhook_attempts_total{state}             webhook attempts by the state they left
//	webhook_attempt_duration_seconds          their duration (histogram)
//	store_commit_duration_seconds             the SQLite writer's transactions (histogram)
//	store_commit_writes                       writes per transaction: the batch size (histogram)
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spoolrun/spool"
)

// statsTimeout bounds the store read of a scrape, so that a scrape of a
// busy engine fails rather than piles up.
const statsTimeout = 5 * time.Second

// Collector is a prometheus.Collector of an Engine's metrics. Make it
// with New.
type Collector struct {
	e *spool.Engine

	created   *prometheus.CounterVec
	finished  *prometheus.CounterVec
	retries   *prometheus.CounterVec
	handler   *prometheus.HistogramVec
	attempts  *prometheus.CounterVec
	attemptD  prometheus.Histogram
	commitD   prometheus.Histogram
	commitN   prometheus.Histogram
	tasks     *prometheus.Desc
	depth     *prometheus.Desc
	oldest    *prometheus.Desc
	collected []prometheus.Collector // the counters and histograms above
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector of e's metrics, observing e from now on (see
// spool.Engine.Observe). Call it once per engine: each Collector counts
// on its own, and a registry refuses two.
func New(e *spool.Engine) *Collector {
	c := &Collector{
		e: e,
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_tasks_created_total",
			Help: "Tasks created by Create and CreateMany in this process."}, []string{"kind"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_tasks_finished_total",
			Help: "Tasks that this process's handlers finished (completed, failed, error) or that Cancel cancelled."},
			[]string{"kind", "status"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_task_retries_total",
			Help: "Handler runs that failed and will be tried again after their backoff."}, []string{"kind"}),
		handler: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spool_handler_duration_seconds",
			Help:    "How long handlers ran, whatever their outcome.",
			Buckets: []float64{.001, .005, .025, .1, .5, 1, 5, 15, 60, 300, 1800}}, []string{"kind"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_webhook_attempts_total",
			Help: "Webhook attempts, by the state they left their delivery in (pending: to be tried again)."},
			[]string{"state"}),
		attemptD: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spool_webhook_attempt_duration_seconds",
			Help: "How long webhook attempts took.", Buckets: []float64{.005, .025, .1, .5, 1, 5, 15}}),
		commitD: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spool_store_commit_duration_seconds",
			Help:    "How long the SQLite writer's transactions took, waiting for the lock included.",
			Buckets: []float64{.0001, .0005, .001, .005, .025, .1, .5, 2}}),
		commitN: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spool_store_commit_writes",
			Help:    "Writes per transaction of the SQLite writer: its group commit's batch size.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}),
		tasks: prometheus.NewDesc("spool_tasks", "Tasks stored, by kind and status.",
			[]string{"kind", "status"}, nil),
		depth: prometheus.NewDesc("spool_queue_depth", "Tasks pending: due, or waiting for a worker.",
			[]string{"kind"}, nil),
		oldest: prometheus.NewDesc("spool_oldest_pending_age_seconds",
			"Age of the oldest pending task, from its creation.", []string{"kind"}, nil),
	}
	c.collected = []prometheus.Collector{c.created, c.finished, c.retries, c.handler, c.attempts, c.attemptD,
		c.commitD, c.commitN}
	e.Observe(&spool.Observer{
		TasksCreated: func(kind string) { c.created.WithLabelValues(kind).Inc() },
		HandlerDone:  c.handlerDone,
		TaskCancelled: func(kind string) {
			c.finished.WithLabelValues(kind, string(spool.StatusCancelled)).Inc()
		},
		Committed: func(writes int, took time.Duration) {
			c.commitD.Observe(took.Seconds())
			c.commitN.Observe(float64(writes))
		},
		WebhookAttempted: func(state spool.DeliveryState, took time.Duration) {
			c.attempts.WithLabelValues(string(state)).Inc()
			c.attemptD.Observe(took.Seconds())
		},
	})
	return c
}

// handlerDone counts a handler's outcome. A workflow's own run moves it
// to waiting on its steps: that is no retry.
func (c *Collector) handlerDone(kind string, to spool.Status, took time.Duration) {
	c.handler.WithLabelValues(kind).Observe(took.Seconds())
	switch {
	case to == spool.StatusWaiting && kind != spool.KindWorkflow:
		c.retries.WithLabelValues(kind).Inc()
	case to.Terminal():
		c.finished.WithLabelValues(kind, string(to)).Inc()
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.collected {
		m.Describe(ch)
	}
	ch <- c.tasks
	ch <- c.depth
	ch <- c.oldest
}

// Collect implements prometheus.Collector. It reads the gauges from the
// store (spool.Engine.Stats); when that fails, the scrape reports the
// error for them and still has the counters.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.collected {
		m.Collect(ch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	st, err := c.e.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.tasks, err)
		return
	}
	now := time.Now()
	for kind, byStatus := range st.ByKind {
		for status, n := range byStatus {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(n), kind, string(status))
		}
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(byStatus[spool.StatusPending]), kind)
		age := 0.0
		if at, ok := st.OldestPendingByKind[kind]; ok {
			age = max(now.Sub(at).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, kind)
	}
}

// Handler returns an http.Handler that serves e's metrics (a new
// Collector of e) with the Go runtime's and the process's, in the
// Prometheus exposition format, from a registry of its own. Call it once
// per engine.
func Handler(e *spool.Engine) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(e), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
