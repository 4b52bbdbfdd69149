package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/webhook"
)

// runWebhooks drains no-op tasks that each carry a webhook_url to a
// receiver in this process, and compares with the same drain without
// webhooks. Each task makes three deliveries (created, processing,
// completed). It reports the drain's tasks/s (Start to the last
// completion) and, end to end, the time until the receiver has every
// delivery: deliveries/s.
func runWebhooks(o options) (*result, error) {
	base, err := drainCounted(o, "base", o.N, spool.Config{}, nil)
	if err != nil {
		return nil, err
	}
	want := int64(3 * o.N)
	var got atomic.Int64
	all := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if got.Add(1) == want {
			close(all)
		}
	}))
	defer srv.Close()
	secret, err := webhook.NewSecret()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(o.Dir, "webhooks.db")
	store, err := spool.OpenSQLite(ctx, path, &spool.SQLiteOptions{Synchronous: o.Sync})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	cfg := spool.Config{Store: store, Concurrency: o.Concurrency, AllowPrivateNetworks: true,
		Webhooks: spool.WebhookConfig{Secrets: []string{secret.Encode()}, Concurrency: o.HookConc}}
	e, err := spool.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var done atomic.Int64
	finished := make(chan struct{})
	e.Register("noop", spool.HandlerFunc(func(context.Context, *spool.Job) error {
		if done.Add(1) == int64(o.N) {
			close(finished)
		}
		return nil
	}))
	req := noopRequest
	req.WebhookURL = srv.URL
	reqs := make([]spool.Request, 1000)
	for i := range reqs {
		reqs[i] = req
	}
	for n := 0; n < o.N; n += len(reqs) {
		if _, err := e.CreateMany(ctx, reqs[:min(len(reqs), o.N-n)]); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	<-finished
	drained := time.Since(start)
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		return nil, fmt.Errorf("receiver got %d of %d deliveries", got.Load(), want)
	}
	delivered := time.Since(start)
	if err := e.Close(ctx); err != nil {
		return nil, err
	}
	rate := float64(o.N) / drained.Seconds()
	e2e := float64(o.N) / delivered.Seconds()
	return &result{N: o.N, Figures: map[string]float64{"tasks/s": rate, "ratio": rate / base,
		"e2e_tasks/s": e2e, "e2e_ratio": e2e / base, "deliveries/s": float64(want) / delivered.Seconds()},
		Note: fmt.Sprintf("%.0f deliveries/s; all %d delivered at %.0f tasks/s end to end, %.0f%% of plain drain; plain drain %.0f tasks/s",
			float64(want)/delivered.Seconds(), want, e2e, 100*e2e/base, base)}, nil
}
