package spool

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"
)

// run is a task being handled by this engine.
type run struct {
	task   *Task
	cancel context.CancelCauseFunc
}

// runLoop claims tasks whenever a worker is free and there may be work: at
// once when this engine created a task or a worker finished, at the
// earliest due time of a waiting task, and every PollInterval for tasks
// that other processes created.
func (e *Engine) runLoop(ctx, handlerCtx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		full, err := e.claim(ctx, handlerCtx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("spool: claim tasks", "err", err)
		}
		wait := e.cfg.PollInterval
		if !full && err == nil {
			if next, err := e.store.NextDue(ctx, e.kinds()); err == nil && !next.IsZero() {
				wait = min(wait, max(time.Until(next), 0))
			}
		}
		if full {
			wait = e.cfg.PollInterval // a finishing worker pokes us
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// kinds lists the kinds this engine has handlers for.
func (e *Engine) kinds() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ks := make([]string, 0, len(e.handlers))
	for k := range e.handlers {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// claim takes as many runnable tasks as there are free workers, respecting
// the per-kind limits, and starts them. full reports that every worker is
// busy (or every kind at its limit).
func (e *Engine) claim(ctx, handlerCtx context.Context) (full bool, err error) {
	e.mu.Lock()
	free := e.cfg.Concurrency - e.nrunning
	var batches []ClaimBatch
	var open []string
	for kind := range e.handlers {
		limit, ok := e.cfg.KindConcurrency[kind]
		if !ok || limit <= 0 {
			open = append(open, kind)
			continue
		}
		if n := min(limit-e.byKind[kind], free); n > 0 {
			batches = append(batches, ClaimBatch{Kinds: []string{kind}, Limit: n})
		}
	}
	e.mu.Unlock()
	if free <= 0 {
		return true, nil
	}
	slices.Sort(open)
	// Limited kinds first, so that their share is not eaten by the rest;
	// ClaimTasks never exceeds a batch's limit.
	if len(open) > 0 {
		batches = append(batches, ClaimBatch{Kinds: open, Limit: free})
	}
	if len(batches) == 0 {
		return true, nil
	}
	// Cap the total at free: the limited batches came first and may leave
	// less for the rest.
	now := time.Now()
	tasks, err := e.store.ClaimTasks(ctx, &ClaimParams{
		Owner: e.inst.ID, Now: now, LeaseUntil: now.Add(e.cfg.LeaseDuration),
		Batches: capBatches(batches, free),
	})
	if err != nil {
		return false, err
	}
	if len(tasks) > 0 {
		e.changed.notify()
	}
	for _, t := range tasks {
		e.startRun(handlerCtx, t)
	}
	return len(tasks) == free, nil
}

// capBatches trims the batches' limits so that they add up to at most n.
func capBatches(bs []ClaimBatch, n int) []ClaimBatch {
	out := bs[:0]
	for _, b := range bs {
		b.Limit = min(b.Limit, n)
		if b.Limit > 0 {
			out = append(out, b)
			n -= b.Limit
		}
	}
	return out
}

func (e *Engine) startRun(handlerCtx context.Context, t *Task) {
	ctx, cancel := context.WithCancelCause(handlerCtx)
	r := &run{task: t, cancel: cancel}
	e.mu.Lock()
	e.running[t.ID] = r
	e.byKind[t.Kind]++
	e.nrunning++
	h := e.handlers[t.Kind]
	e.mu.Unlock()
	e.workers.Go(func() error {
		defer func() {
			cancel(nil)
			e.mu.Lock()
			delete(e.running, t.ID)
			e.byKind[t.Kind]--
			e.nrunning--
			e.mu.Unlock()
			e.poke()
		}()
		e.execute(ctx, h, t)
		return nil
	})
}

// execute runs one attempt and records its outcome.
func (e *Engine) execute(ctx context.Context, h Handler, t *Task) {
	timeout := e.cfg.Timeout
	if d, ok := e.cfg.KindTimeout[t.Kind]; ok {
		timeout = d
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, ErrTimeout)
		defer cancel()
	}
	job := newJob(e, t)
	err := e.call(ctx, h, job)
	job.stop()
	if err != nil && errors.Is(context.Cause(ctx), ErrTimeout) {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}

	ch := &Change{ID: t.ID, Owner: e.inst.ID}
	cause := context.Cause(ctx)
	switch {
	case err == nil:
		ch.To, ch.Output = StatusCompleted, job.output
	case errors.Is(cause, ErrCancelled):
		return // the cancel already ended the task
	case errors.Is(cause, ErrShutdown):
		ch.To, ch.Attempt = StatusPending, -1
	case IsPermanent(err):
		ch.To, ch.Error = StatusFailed, err.Error()
	case t.Attempt >= t.MaxAttempts:
		ch.To, ch.Error = StatusError, err.Error()
	default:
		ch.To, ch.Error = StatusWaiting, err.Error()
		ch.Due = time.Now().Add(e.cfg.Backoff(t.Attempt))
	}
	// The outcome must be recorded even though ctx may be cancelled.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := e.store.Apply(sctx, ch); err != nil {
		if !errors.Is(err, ErrInvalidTransition) {
			e.log.Error("spool: record task outcome", "task", t.ID, "status", ch.To, "err", err)
		}
		return
	}
	e.changed.notify()
	if ch.To == StatusWaiting || ch.To == StatusPending {
		e.poke()
	}
}

// call runs the handler, turning a panic into an error.
func (e *Engine) call(ctx context.Context, h Handler, job *Job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			e.log.Error("spool: handler panicked", "task", job.Task.ID, "kind", job.Task.Kind,
				"panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	return h.Handle(ctx, job)
}

// heartbeatLoop renews this engine's leases, stops handlers whose task was
// cancelled or taken away by another process, and recovers the tasks of
// dead engines.
func (e *Engine) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		before := make([]*run, 0, len(e.running))
		for _, r := range e.running {
			before = append(before, r)
		}
		e.mu.Unlock()
		held, err := e.store.Heartbeat(ctx, &e.inst, time.Now().Add(e.cfg.LeaseDuration))
		if err != nil {
			if ctx.Err() == nil {
				e.log.Error("spool: heartbeat", "err", err)
			}
			continue
		}
		for _, r := range before {
			if !slices.Contains(held, r.task.ID) {
				r.cancel(ErrCancelled)
			}
		}
		if err := e.recover(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("spool: recover tasks", "err", err)
		}
	}
}

// recover takes back the tasks of engines that stopped heartbeating (or
// whose process is gone, on this host) and of leases that ran out.
func (e *Engine) recover(ctx context.Context) error {
	insts, err := e.store.Instances(ctx)
	if err != nil {
		return err
	}
	stale := time.Now().Add(-5 * e.cfg.HeartbeatInterval)
	var dead []string
	for _, in := range insts {
		if in.ID == e.inst.ID {
			continue
		}
		if in.Heartbeat.Before(stale) || in.Host == e.inst.Host && in.PID != e.inst.PID && !processAlive(in.PID) {
			dead = append(dead, in.ID)
		}
	}
	n, err := e.store.Recover(ctx, dead, time.Now())
	if err != nil {
		return err
	}
	if n > 0 {
		e.log.Info("spool: recovered tasks of stopped engines", "tasks", n, "engines", len(dead))
		e.changed.notify()
		e.poke()
	}
	return nil
}

// maintainLoop prunes events that are old and delivered.
func (e *Engine) maintainLoop(ctx context.Context) {
	every := min(e.cfg.EventRetention/10, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := e.prune(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("spool: prune events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *Engine) prune(ctx context.Context) error {
	keep := ""
	if e.cfg.OnEvent != nil {
		c, err := e.store.Cursor(ctx, onEventCursor)
		if err != nil {
			return err
		}
		keep = c
		if keep == "" {
			keep = eventID(0, time.Unix(0, 0))
		}
	}
	_, err := e.store.PruneEvents(ctx, time.Now().Add(-e.cfg.EventRetention), keep)
	return err
}
