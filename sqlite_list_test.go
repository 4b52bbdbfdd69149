package spool_test

import (
	"context"
	"testing"

	"github.com/spoolrun/spool"
)

// TestListCheapTotal: with CheapTotal, the SQLite store counts filters on
// status and kind (from its counters) and leaves the others at -1, which
// would read every match.
func TestListCheapTotal(t *testing.T) {
	ctx := context.Background()
	e, err := spool.Open(ctx, spool.Config{Path: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	e.Register("noop", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	for i := range 3 {
		if _, err := e.Create(ctx, spool.Request{Kind: "noop", Ref: "r", Folder: []string{"a", "b", "a"}[i]}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		p    spool.ListParams
		want int
	}{
		{spool.ListParams{}, 3},
		{spool.ListParams{Kind: "noop", Status: spool.StatusPending}, 3},
		{spool.ListParams{Ref: "r"}, -1},
		{spool.ListParams{Folder: "a", Kind: "noop"}, -1},
		{spool.ListParams{ParentID: "task_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A"}, -1},
	} {
		p := c.p
		p.CheapTotal = true
		page, err := e.List(ctx, &p)
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != c.want {
			t.Errorf("%+v: Total %d, want %d", c.p, page.Total, c.want)
		}
		p.CheapTotal = false
		if page, err = e.List(ctx, &p); err != nil || page.Total < 0 {
			t.Errorf("%+v without CheapTotal: Total %d, %v", c.p, page.Total, err)
		}
	}
}
