package spool

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// run is a task this engine holds under its lease: claimed and waiting for
// a worker, running, or having its outcome recorded.
type run struct {
	task   *Task
	ctx    context.Context // the handler's; cancelled before the start if the task is
	cancel context.CancelCauseFunc
	// claimed is false while a hand-off's claim is not committed yet, when
	// the store cannot know the task: the heartbeat leaves it alone.
	// Guarded by e.mu.
	claimed bool
}

// runLoop claims tasks whenever a worker is free and there may be work: at
// once when this engine created a task or a worker finished, at the
// earliest due time of a waiting task, and every PollInterval for tasks
// that other processes created. It claims up to Concurrency tasks more than
// there are free workers, so that one claim statement feeds many runs; the
// extra ones start as workers free up.
func (e *Engine) runLoop(ctx, handlerCtx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		runs, want, asked, err := e.claim(ctx, handlerCtx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("spool: claim tasks", "err", err)
		}
		if len(runs) > 0 {
			e.changed.notify()
			if !e.startAll(ctx, runs) {
				return
			}
		}
		e.mu.Lock()
		// Drained: Create may hand new tasks straight to free workers.
		e.idle = err == nil && want > 0 && len(runs) < want
		e.mu.Unlock()
		if want > 0 && len(runs) == want {
			continue // more may be runnable
		}
		wait := e.cfg.PollInterval
		if want > 0 && err == nil {
			// Everything runnable of the kinds with room is taken: sleep
			// until the next timed one. Kinds at their limit wait for a
			// worker to finish, which wakes this loop.
			if next, err := e.store.NextDue(ctx, asked); err == nil && !next.IsZero() {
				wait = min(wait, max(time.Until(next), time.Millisecond))
			}
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

// startAll starts the claimed tasks as workers free up. If the engine shuts
// down first, the tasks not started go back to pending without using up an
// attempt, and startAll returns false.
func (e *Engine) startAll(ctx context.Context, runs []*run) bool {
	for i, r := range runs {
		for !e.startRun(r) {
			select {
			case <-ctx.Done():
				e.release(runs[i:])
				return false
			case <-e.wake:
			}
		}
	}
	return true
}

// release gives back claimed tasks that never started.
func (e *Engine) release(runs []*run) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() {
			defer e.letGo(r)
			_, err := e.store.Apply(ctx, &Change{ID: r.task.ID, To: StatusPending, Owner: e.inst.ID,
				AtAttempt: r.task.Attempt, Attempt: -1, NoResult: true})
			if err != nil && !errors.Is(err, ErrInvalidTransition) {
				e.log.Error("spool: release task", "task", r.task.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// letGo forgets a task this engine no longer holds, so that its lease is no
// longer renewed: if its outcome could not be recorded, the lease runs out
// and the task is recovered.
func (e *Engine) letGo(r *run) {
	r.cancel(nil)
	e.mu.Lock()
	delete(e.held, r.task.ID)
	e.mu.Unlock()
}

// claim takes runnable tasks: as many as there are free workers plus a
// prefetch buffer, within the per-kind limits, and holds them. want is how
// many it asked for (0 when no worker is free), asked the kinds it asked
// for.
func (e *Engine) claim(ctx, handlerCtx context.Context) (runs []*run, want int, asked []string, err error) {
	e.mu.Lock()
	free := e.cfg.Concurrency - e.nrunning
	want = free + e.prefetch()
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
		return nil, 0, nil, nil
	}
	slices.Sort(open)
	// Limited kinds first, so that their share is not eaten by the rest.
	if len(open) > 0 {
		batches = append(batches, ClaimBatch{Kinds: open, Limit: want})
	}
	batches = capBatches(batches, want)
	want = 0
	for _, b := range batches {
		want += b.Limit
		asked = append(asked, b.Kinds...)
	}
	if want == 0 {
		return nil, 0, nil, nil
	}
	now := time.Now()
	tasks, err := e.store.ClaimTasks(ctx, &ClaimParams{
		Owner: e.inst.ID, Now: now, LeaseUntil: now.Add(e.cfg.LeaseDuration), Batches: batches,
	})
	e.mu.Lock()
	for _, t := range tasks {
		rctx, cancel := context.WithCancelCause(handlerCtx)
		r := &run{task: t, ctx: rctx, cancel: cancel, claimed: true}
		e.held[t.ID] = r
		runs = append(runs, r)
	}
	e.mu.Unlock()
	return runs, want, asked, err
}

// prefetch is how many tasks to claim beyond the free workers. Short tasks
// are claimed ahead, so that one claim statement feeds many runs; long ones
// (media work) are not, so that an idle engine elsewhere can take them.
// Called with e.mu held.
func (e *Engine) prefetch() int {
	switch {
	case e.runs == 0: // nothing ran yet: the tasks may be long
		return 0
	case e.runAvg < shortRun:
		return 8 * e.cfg.Concurrency
	default:
		return 0
	}
}

// shortRun is the mean handler time under which tasks are prefetched.
const shortRun = 5 * time.Millisecond

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

// startRun starts a worker for r, or returns false if every worker is busy.
// A task cancelled while it waited is let go without running.
func (e *Engine) startRun(r *run) bool {
	if r.ctx.Err() != nil {
		e.letGo(r) // cancelled or lost before it started
		return true
	}
	e.mu.Lock()
	ok := e.takeWorker(r.task.Kind)
	e.mu.Unlock()
	if ok {
		e.launch(r)
	}
	return ok
}

// takeWorker counts a worker busy with a task of kind, if one is free
// within the limits. Called with e.mu held.
func (e *Engine) takeWorker(kind string) bool {
	if e.nrunning >= e.cfg.Concurrency {
		return false
	}
	if limit, ok := e.cfg.KindConcurrency[kind]; ok && limit > 0 && e.byKind[kind] >= limit {
		return false
	}
	e.byKind[kind]++
	e.nrunning++
	return true
}

// reserve takes a worker for a new task that Create can hand over directly,
// without the queue: on a started engine whose queue is drained, for a
// task runnable now. It returns nil when the task must go through the
// queue.
func (e *Engine) reserve(t *Task) *run {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.handlers[t.Kind]
	if !e.started || e.closed || h == nil || t.Status != StatusPending || !e.idle {
		return nil
	}
	if !e.takeWorker(t.Kind) {
		e.idle = false // tasks queue up: keep them in order
		return nil
	}
	ctx, cancel := context.WithCancelCause(e.handlerCtx)
	r := &run{task: t, ctx: ctx, cancel: cancel}
	e.held[t.ID] = r
	e.handoffs.Add(1)
	return r
}

// unreserve gives back the worker of a hand-off that did not happen.
func (e *Engine) unreserve(r *run) {
	e.mu.Lock()
	e.byKind[r.task.Kind]--
	e.nrunning--
	e.mu.Unlock()
	e.letGo(r)
	e.poke()
}

// launch runs r on the worker already counted for it. The engine's own
// count decides who may start: a finishing worker frees its count just
// before errgroup frees its slot, so Go may wait for that moment, never
// longer.
func (e *Engine) launch(r *run) {
	t := r.task
	e.mu.Lock()
	h := e.handlers[t.Kind]
	e.mu.Unlock()
	e.workers.Go(func() error {
		began := time.Now()
		var ch *Change
		var files []*File
		defer func() {
			// Deferred, so that a handler that calls runtime.Goexit (a
			// test's FailNow) still frees its worker and its task.
			e.freeWorker(t, time.Since(began))
			if ch == nil {
				e.letGo(r)
				return
			}
			// Record the outcome in the background, so that the worker is
			// free at once and outcomes from many workers share a commit.
			// Until it commits the task stays processing under this
			// engine's lease; a crash now means the task runs again.
			e.settling.Add(1)
			go func() {
				defer e.settling.Done()
				defer e.letGo(r)
				e.settle(ch, files)
			}()
		}()
		ch, files = e.execute(r.ctx, h, t)
		return nil
	})
}

// freeWorker counts a worker free again and learns how long runs take.
func (e *Engine) freeWorker(t *Task, took time.Duration) {
	e.mu.Lock()
	if e.runs++; e.runs == 1 {
		e.runAvg = took
	} else {
		e.runAvg += (took - e.runAvg) / 8 // a moving average of run times
	}
	e.byKind[t.Kind]--
	e.nrunning--
	e.mu.Unlock()
	e.poke()
}

// execute runs one attempt and returns the change that records its
// outcome, or nil if there is nothing to record, and the files the change
// records.
func (e *Engine) execute(ctx context.Context, h Handler, t *Task) (*Change, []*File) {
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

	ch := &Change{ID: t.ID, Owner: e.inst.ID, AtAttempt: t.Attempt, NoResult: true}
	cause := context.Cause(ctx)
	switch {
	case err == nil:
		ch.To, ch.Output = StatusCompleted, job.output
	case errors.Is(cause, ErrCancelled), errors.Is(cause, ErrLeaseLost):
		// The task ended or moved elsewhere: nothing will record its files.
		for _, f := range job.record(&Change{}) {
			e.dropBytes(f)
		}
		return nil, nil
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
	files := job.record(ch)
	return ch, files
}

// settle records an attempt's outcome. If the store refuses it (the task
// was cancelled meanwhile), the attempt's files are deleted.
func (e *Engine) settle(ch *Change, files []*File) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.store.Apply(ctx, ch); err != nil {
		for _, f := range files {
			e.dropBytes(f)
		}
		if !errors.Is(err, ErrInvalidTransition) {
			e.log.Error("spool: record task outcome", "task", ch.ID, "status", ch.To, "err", err)
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
