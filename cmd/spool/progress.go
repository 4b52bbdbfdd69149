package main

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/spoolrun/spool"
)

// progressView shows a task's progress as it runs: the task itself and, for
// a workflow, each step listed in its workflow field.
type progressView interface {
	// update shows t, as last read.
	update(t *spool.Task)
	// finish shows t, which has finished or is no longer watched, and
	// returns once the view has drawn its last.
	finish(t *spool.Task)
}

// newProgressView returns bars drawn on w when it is a terminal, else
// plain lines ("progress 40%"), or nothing when quiet.
func newProgressView(w io.Writer, quiet bool) progressView {
	switch {
	case quiet:
		return nopView{}
	case isTerminal(w) && termWidth(w) > 0: // mpb draws nothing 0 columns wide
		return newBarView(w)
	}
	return &lineView{w: w, last: map[string]lineState{}}
}

type nopView struct{}

func (nopView) update(*spool.Task) {}
func (nopView) finish(*spool.Task) {}

// row is one line of progress: the task or one of its steps.
type row struct {
	id       string
	kind     string
	label    string // "" for the task itself
	status   spool.Status
	progress int
}

// rows lists t and its workflow steps.
func rows(t *spool.Task) []row {
	out := []row{{id: t.ID, kind: t.Kind, status: t.Status, progress: t.Progress}}
	for _, s := range t.Workflow {
		label := s.Kind
		if s.Ref != "" {
			label += " " + s.Ref
		}
		if s.Step != "" {
			label = s.Step + " " + label
		}
		out = append(out, row{id: s.ID, kind: s.Kind, label: label, status: s.Status, progress: s.Progress})
	}
	return out
}

// lineView prints a line when a task's status or progress changes:
// "status processing", "progress 40%", and for a workflow's steps the same
// after the step's place and kind: "workflow[0] image thumb: progress 40%".
type lineView struct {
	w    io.Writer
	last map[string]lineState
}

type lineState struct {
	status   spool.Status
	progress int
}

func (v *lineView) update(t *spool.Task) {
	for _, r := range rows(t) {
		prefix := ""
		if r.label != "" {
			prefix = r.label + ": "
		}
		last, seen := v.last[r.id]
		if !seen || last.status != r.status {
			fmt.Fprintf(v.w, "%sstatus %s\n", prefix, r.status)
		}
		p := r.progress
		if r.status == spool.StatusCompleted {
			p = 100
		}
		if p != last.progress && (p > 0 || seen) {
			fmt.Fprintf(v.w, "%sprogress %d%%\n", prefix, p)
		}
		v.last[r.id] = lineState{status: r.status, progress: p}
	}
}

func (v *lineView) finish(t *spool.Task) { v.update(t) }

// barView draws one bar per row with mpb. update and finish are called
// from one goroutine; mpb's goroutines read each bar's status.
type barView struct {
	p    *mpb.Progress
	bars map[string]*bar
}

type bar struct {
	b      *mpb.Bar
	status atomic.Value // spool.Status, for the status decorator
}

func newBarView(w io.Writer) *barView {
	return &barView{
		p:    mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(100*time.Millisecond)),
		bars: map[string]*bar{},
	}
}

func (v *barView) update(t *spool.Task) {
	for _, r := range rows(t) {
		b := v.bars[r.id]
		if b == nil {
			b = v.add(r)
		}
		b.status.Store(r.status)
		if r.status == spool.StatusCompleted {
			b.b.SetCurrent(100)
		} else if !r.status.Terminal() {
			b.b.SetCurrent(int64(min(r.progress, 99))) // 100 would end the bar
		}
	}
}

func (v *barView) add(r row) *bar {
	label := r.label
	if label == "" {
		label = r.kind
	}
	b := &bar{}
	b.status.Store(r.status)
	status := func(decor.Statistics) string {
		s, _ := b.status.Load().(spool.Status)
		return " " + string(s)
	}
	b.b = v.p.AddBar(100,
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Percentage(decor.WC{W: 6}), decor.Any(status, decor.WC{W: 12, C: decor.DindentRight})),
	)
	v.bars[r.id] = b
	return b
}

func (v *barView) finish(t *spool.Task) {
	v.update(t)
	for _, b := range v.bars {
		if !b.b.Completed() {
			b.b.Abort(false) // keep the bar where it stopped
		}
	}
	v.p.Wait()
}

// watch shows the task get reads in view until it has finished, and returns
// it. It reads again on each value from wake (events, for an engine in
// this process; nil for none) and every interval. When ctx ends first, it
// returns the last task read and ctx's error.
func watch(ctx context.Context, get func(context.Context) (*spool.Task, error), wake <-chan spool.Event,
	interval time.Duration, view progressView) (*spool.Task, error) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last *spool.Task
	for {
		t, err := get(ctx)
		if err != nil {
			if last != nil {
				view.finish(last)
			}
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return nil, err
		}
		last = t
		if t.Status.Terminal() {
			view.finish(t)
			return t, nil
		}
		view.update(t)
		select {
		case <-ctx.Done():
			view.finish(last)
			return last, ctx.Err()
		case _, ok := <-wake:
			if !ok {
				wake = nil
			}
		case <-tick.C:
		}
	}
}
