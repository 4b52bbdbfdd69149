package main

import (
	"context"
	"testing"
	"time"
)

// TestSmoke runs every workload on every system with a handful of tasks, in
// process, to check the adapters end to end (not a benchmark).
func TestSmoke(t *testing.T) {
	for _, sys := range []string{"spool", "river", "goqite"} {
		for _, wl := range workloadNames {
			t.Run(sys+"/"+wl, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				// tuned keeps the poll-bound peers' latency runs short.
				res, err := runWorkload(ctx, systems[sys](), wl, t.TempDir(), 50, 5, 20*time.Second, options{workers: 8, tuned: true})
				if err != nil {
					t.Fatal(err)
				}
				if res.N != res.Of {
					t.Fatalf("did %d of %d", res.N, res.Of)
				}
				if wl == "latency" && (res.P50 <= 0 || res.P99 < res.P50) {
					t.Fatalf("bad percentiles %+v", res)
				}
				if wl != "latency" && res.Seconds <= 0 {
					t.Fatalf("no time measured %+v", res)
				}
			})
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if got := percentile(d, 0.50); got != 50 {
		t.Errorf("p50 = %d, want 50", got)
	}
	if got := percentile(d, 0.99); got != 99 {
		t.Errorf("p99 = %d, want 99", got)
	}
	if got := percentile(d[:1], 0.99); got != 1 {
		t.Errorf("p99 of one = %d, want 1", got)
	}
}
