package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// workloadNames in run order.
var workloadNames = []string{"enqueue", "enqueue8", "drain", "latency"}

const (
	enqueueGoroutines = 8    // producers in the enqueue8 workload
	bulkChunk         = 1000 // tasks per bulk insert call when pre-filling
	latencyWarmup     = 10   // untimed round trips before the latency samples
)

// result is what a child process reports for one (system, workload).
type result struct {
	N       int     `json:"n"`                // tasks (or latency samples) measured
	Of      int     `json:"of"`               // tasks (or samples) asked for; N < Of when the time cap hit
	Seconds float64 `json:"seconds"`          // timed section, throughput workloads
	P50     float64 `json:"p50_ms,omitempty"` // latency workload
	P99     float64 `json:"p99_ms,omitempty"`
}

func (r result) rate() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.N) / r.Seconds
}

// runWorkload opens sys in dir, runs one workload and closes it. The timed
// section stops early, with the tasks (or samples) done so far, once it has
// run for timeCap: poll-bound peers would otherwise take minutes.
func runWorkload(ctx context.Context, sys system, workload, dir string, n, latencyN int, timeCap time.Duration, opts options) (res result, err error) {
	var (
		onRun func() = func() {}
		ran   atomic.Int64
		done  = make(chan struct{})
		start chan time.Time
	)
	switch workload {
	case "drain":
		onRun = func() {
			if ran.Add(1) == int64(n) {
				close(done)
			}
		}
	case "latency":
		start = make(chan time.Time, 1)
		onRun = func() {
			select {
			case start <- time.Now():
			default: // never expected: one task in flight at a time
			}
		}
	}

	if err := sys.open(ctx, dir, opts, onRun); err != nil {
		return res, fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := sys.close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()

	switch workload {
	case "enqueue":
		t0 := time.Now()
		deadline := t0.Add(timeCap)
		i := 0
		for ; i < n && time.Now().Before(deadline); i++ {
			if err := sys.enqueue(ctx); err != nil {
				return res, fmt.Errorf("enqueue: %w", err)
			}
		}
		return result{N: i, Of: n, Seconds: time.Since(t0).Seconds()}, nil

	case "enqueue8":
		var (
			wg    sync.WaitGroup
			errs  = make([]error, enqueueGoroutines)
			total atomic.Int64
		)
		t0 := time.Now()
		deadline := t0.Add(timeCap)
		for g := range enqueueGoroutines {
			share := n / enqueueGoroutines
			if g < n%enqueueGoroutines {
				share++
			}
			wg.Go(func() {
				for range share {
					if time.Now().After(deadline) {
						return
					}
					if err := sys.enqueue(ctx); err != nil {
						errs[g] = err
						return
					}
					total.Add(1)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(t0)
		if err := errors.Join(errs...); err != nil {
			return res, fmt.Errorf("enqueue: %w", err)
		}
		return result{N: int(total.Load()), Of: n, Seconds: elapsed.Seconds()}, nil

	case "drain":
		for left := n; left > 0; left -= bulkChunk {
			if err := sys.enqueueBulk(ctx, min(left, bulkChunk)); err != nil {
				return res, fmt.Errorf("bulk enqueue: %w", err)
			}
		}
		t0 := time.Now()
		capTimer := time.NewTimer(timeCap)
		defer capTimer.Stop()
		if err := sys.start(ctx); err != nil {
			return res, fmt.Errorf("start: %w", err)
		}
		select {
		case <-done:
		case <-capTimer.C:
		case <-ctx.Done():
			return res, fmt.Errorf("drain: %d of %d done: %w", ran.Load(), n, ctx.Err())
		}
		elapsed := time.Since(t0)
		return result{N: int(min(ran.Load(), int64(n))), Of: n, Seconds: elapsed.Seconds()}, nil

	case "latency":
		if err := sys.start(ctx); err != nil {
			return res, fmt.Errorf("start: %w", err)
		}
		lats := make([]time.Duration, 0, latencyN)
		var deadline time.Time
		for i := range latencyWarmup + latencyN {
			if i == latencyWarmup {
				deadline = time.Now().Add(timeCap)
			} else if i > latencyWarmup && time.Now().After(deadline) {
				break
			}
			t0 := time.Now()
			if err := sys.enqueue(ctx); err != nil {
				return res, fmt.Errorf("enqueue: %w", err)
			}
			select {
			case t1 := <-start:
				if i >= latencyWarmup {
					lats = append(lats, t1.Sub(t0))
				}
			case <-ctx.Done():
				return res, fmt.Errorf("latency: sample %d: %w", i, ctx.Err())
			}
		}
		slices.Sort(lats)
		return result{N: len(lats), Of: latencyN, P50: ms(percentile(lats, 0.50)), P99: ms(percentile(lats, 0.99))}, nil
	}
	return res, fmt.Errorf("unknown workload %q", workload)
}

// percentile returns the nearest-rank p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
