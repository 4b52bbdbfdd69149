package spool

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// run is one attempt at a task that this engine holds under its lease:
// claimed and waiting for a worker, running, or having its outcome
// recorded.
type run struct {
	task *Task
	// ctx is the handler's. A task cancelled or lost before its run starts
	// has it cancelled, and is let go unrun.
	ctx      context.Context
	cancel   context.CancelCauseFunc
	done     chan struct{} // closed when the engine lets the run go
	returned atomic.Bool   // the handler has returned
}

// scheduler is the run loop's state: the runs this engine holds and the
// workers they use. Its invariants, which run_test.go checks:
//   - running counts the workers taken and not freed: at most limit in
//     all, at most kindLimit[k] of kind k where that is set;
//   - held lists, under its task's id, every claimed run not yet let go,
//     one per attempt: two claims of one task (the first lost its lease)
//     are two runs, and an ending run removes only its own entry;
//   - a new claim of a task cancels the older runs of that task (their
//     lease is lost), and a run starts only once no older run of its task
//     is held, so one engine never runs a task twice at once.
type scheduler struct {
	mu        sync.Mutex
	limit     int
	kindLimit map[string]int
	held      map[string][]*run // by task id; more than one only after a lost lease
	byKind    map[string]int    // running handlers per kind
	running   int
	runs      int64
	runAvg    time.Duration // moving average of handler run times
	idle      bool          // the last claim drained the queue
}

func newScheduler(limit int, kindLimit map[string]int) *scheduler {
	return &scheduler{limit: limit, kindLimit: kindLimit, held: map[string][]*run{}, byKind: map[string]int{}}
}

// newRun makes a run of t whose context derives from parent.
func newRun(parent context.Context, t *Task) *run {
	ctx, cancel := context.WithCancelCause(parent)
	return &run{task: t, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// hold records claimed runs and cancels the older runs of their tasks,
// whose leases the new claims prove lost.
func (s *scheduler) hold(runs ...*run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range runs {
		for _, old := range s.held[r.task.ID] {
			if old.task.Attempt < r.task.Attempt {
				old.cancel(ErrLeaseLost)
			}
		}
		s.held[r.task.ID] = append(s.held[r.task.ID], r)
	}
}

// forget removes r, and only r, from the held runs.
func (s *scheduler) forget(r *run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	runs := s.held[r.task.ID]
	i := slices.Index(runs, r)
	if i < 0 {
		return
	}
	if len(runs) == 1 {
		delete(s.held, r.task.ID)
	} else {
		s.held[r.task.ID] = slices.Delete(slices.Clone(runs), i, i+1)
	}
	close(r.done)
}

// older returns a held run of r's task on an earlier attempt, or nil.
func (s *scheduler) older(r *run) *run {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range s.held[r.task.ID] {
		if old.task.Attempt < r.task.Attempt {
			return old
		}
	}
	return nil
}

// find returns the held runs of a task.
func (s *scheduler) find(id string) []*run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.held[id])
}

// snapshot returns the held runs.
func (s *scheduler) snapshot() []*run {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*run, 0, len(s.held))
	for _, runs := range s.held {
		out = append(out, runs...)
	}
	return out
}

// take counts a worker busy with a task of kind, if one is free within the
// limits.
func (s *scheduler) take(kind string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked(kind)
}

func (s *scheduler) takeLocked(kind string) bool {
	if s.running >= s.limit {
		return false
	}
	if limit, ok := s.kindLimit[kind]; ok && limit > 0 && s.byKind[kind] >= limit {
		return false
	}
	s.byKind[kind]++
	s.running++
	return true
}

// free counts a worker of kind free again and, when took is not negative,
// learns from it how long runs take.
func (s *scheduler) free(kind string, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if took >= 0 {
		if s.runs++; s.runs == 1 {
			s.runAvg = took
		} else {
			s.runAvg += (took - s.runAvg) / 8
		}
	}
	s.byKind[kind]--
	s.running--
}

// room returns how many workers are free and, for each kind with a limit,
// how many more of its tasks may run.
func (s *scheduler) room(kinds []string) (free int, byKind map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	free = s.limit - s.running
	byKind = map[string]int{}
	for _, k := range kinds {
		if limit, ok := s.kindLimit[k]; ok && limit > 0 {
			byKind[k] = min(limit-s.byKind[k], free)
		}
	}
	return free, byKind
}

// prefetch is how many tasks to claim beyond the free workers. Short tasks
// are claimed ahead, so that one claim statement feeds many runs; long ones
// (media work) are not, so that an idle engine elsewhere can take them.
func (s *scheduler) prefetch() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.runs == 0: // nothing ran yet: the tasks may be long
		return 0
	case s.runAvg < shortRun:
		return 8 * s.limit
	default:
		return 0
	}
}

// busy reports whether tasks may be waiting for this engine's workers:
// the last claim did not drain the queue, or a task was created since
// with no worker free.
func (s *scheduler) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.idle
}

func (s *scheduler) setIdle(idle bool) {
	s.mu.Lock()
	s.idle = idle
	s.mu.Unlock()
}

// reserve takes a worker for a hand-off if the queue is drained, so that
// the new task does not overtake queued ones.
func (s *scheduler) reserve(kind string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.idle {
		return false
	}
	if !s.takeLocked(kind) {
		s.idle = false // tasks queue up: keep them in order
		return false
	}
	return true
}

// runLoop claims tasks whenever a worker is free and there may be work: at
// once when this engine created a task or a worker finished, at the
// earliest due time of a waiting task, and every PollInterval for tasks
// that other processes created. While handlers are short it claims up to
// eight times Concurrency tasks more than there are free workers (see
// prefetch), so that one claim statement feeds many runs; the extra ones
// start as workers free up.
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
		// Drained: Create may hand new tasks straight to free workers.
		// With no worker free (want 0) nothing was asked: the queue is as
		// the last claim left it, unless a Create found no worker since
		// (reserve).
		if want > 0 || err != nil {
			e.sched.setIdle(err == nil && len(runs) < want)
		}
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
		// An earlier run of the task is still held. If its handler has
		// returned, it is only being let go (its outcome made this claim
		// possible): wait for that. If not, it lost its lease (this claim
		// cancelled it): the task must not run twice at once, and a
		// handler that ignores its context must not hold up the others,
		// so the task goes back, due a little later.
		if old := e.sched.older(r); old != nil {
			if !old.returned.Load() {
				e.release([]*run{r}, time.Now().Add(e.cfg.PollInterval))
				continue
			}
			select {
			case <-ctx.Done():
				e.release(runs[i:], time.Time{})
				return false
			case <-old.done:
			}
		}
		for !e.startRun(r) {
			select {
			case <-ctx.Done():
				e.release(runs[i:], time.Time{})
				return false
			case <-e.wake:
			}
		}
	}
	return true
}

// release gives back claimed tasks that never started, without using up
// their attempt, due at due (zero: now).
func (e *Engine) release(runs []*run, due time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() {
			defer e.letGo(r)
			_, err := e.store.Apply(ctx, &Change{ID: r.task.ID, To: StatusPending, Owner: e.inst.ID,
				AtAttempt: r.task.Attempt, Attempt: -1, Due: due, NoResult: true})
			if err != nil && !errors.Is(err, ErrInvalidTransition) {
				e.log.Error("spool: release task", "task", r.task.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// letGo forgets a run this engine no longer holds, so that its lease is no
// longer renewed: if its outcome could not be recorded, the lease runs out
// and the task is recovered.
func (e *Engine) letGo(r *run) {
	r.cancel(nil)
	e.sched.forget(r)
}

// claim takes runnable tasks: as many as there are free workers plus a
// prefetch buffer, within the per-kind limits, and holds them. want is how
// many it asked for (0 when no worker is free), asked the kinds it asked
// for.
func (e *Engine) claim(ctx, handlerCtx context.Context) (runs []*run, want int, asked []string, err error) {
	free, limited := e.sched.room(e.kinds)
	if free <= 0 {
		return nil, 0, nil, nil
	}
	want = free + e.sched.prefetch()
	var batches []ClaimBatch
	var open []string
	for _, kind := range e.kinds {
		n, ok := limited[kind]
		switch {
		case !ok:
			open = append(open, kind)
		case n > 0:
			batches = append(batches, ClaimBatch{Kinds: []string{kind}, Limit: n})
		}
	}
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
	// A generous deadline: a claim that waits for the write lock holds
	// nothing meanwhile, its leases count from its commit, and Close
	// cancels ctx; the deadline only keeps a database locked for good from
	// hanging the loop.
	ctx, cancel := context.WithTimeout(ctx, beatWait*e.cfg.LeaseDuration)
	defer cancel()
	tasks, err := e.store.ClaimTasks(ctx, &ClaimParams{
		Owner: e.inst.ID, Now: time.Now(), Lease: e.cfg.LeaseDuration, Batches: batches,
	})
	if err != nil {
		return nil, want, asked, err
	}
	runs = make([]*run, len(tasks))
	for i, t := range tasks {
		runs[i] = newRun(handlerCtx, t)
	}
	e.sched.hold(runs...)
	return runs, want, asked, nil
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
	ok := e.sched.take(r.task.Kind)
	if ok {
		e.launch(r)
	}
	return ok
}

// reserve takes a worker for a new task that Create can hand over directly,
// without the queue: on a started engine whose queue is drained, for a
// task runnable now of a kind it claims (not one it accepts but cannot
// run). It returns nil when the task must go through the queue.
func (e *Engine) reserve(t *Task) *run {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, claims := slices.BinarySearch(e.kinds, t.Kind); !claims {
		return nil
	}
	if !e.started || e.closed || t.Status != StatusPending ||
		!e.sched.reserve(t.Kind) {
		return nil
	}
	e.handoffs.Add(1)
	return newRun(e.handlerCtx, t)
}

// unreserve gives back the worker of a hand-off that did not happen.
func (e *Engine) unreserve(r *run) {
	e.sched.free(r.task.Kind, -1)
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
			r.returned.Store(true)
			e.sched.free(t.Kind, time.Since(began))
			e.poke()
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
	start := time.Now()
	err := e.call(ctx, h, job)
	took := time.Since(start)
	job.stop()
	if err != nil && errors.Is(context.Cause(ctx), ErrTimeout) {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}

	ch := &Change{ID: t.ID, Owner: e.inst.ID, AtAttempt: t.Attempt, NoResult: true}
	cause := context.Cause(ctx)
	switch {
	case err == nil && t.Kind == KindWorkflow:
		ch.To = StatusWaiting // on its steps, which the outcome's hook creates
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
		ch.Due = time.Now().Add(max(e.cfg.Backoff(t.Attempt), retryAfter(err)))
	}
	files := job.record(ch)
	e.afterOutcome(t, ch, job.results)
	e.observeRun(t.Kind, ch.To, took)
	return ch, files
}

// settle records an attempt's outcome. If the store refuses it (the task
// was cancelled meanwhile), the attempt's files are deleted.
//
// It waits for the database as long as the engine lives: a late outcome
// is still this run's, and its lease is renewed meanwhile. Only a Close
// that gives up on stuck handlers abandons it, and the lease then runs
// out. (One engine-wide context, not a timer per outcome: that cost 5% of
// a drain.)
func (e *Engine) settle(ch *Change, files []*File) {
	if _, err := e.store.Apply(e.life, ch); err != nil {
		for _, f := range files {
			e.dropBytes(f)
		}
		if errors.Is(err, ErrInvalidTransition) {
			// Cancelled meanwhile, or the lease was lost and another
			// claim holds the task: this attempt's outcome is void.
			e.log.Info("spool: task outcome not recorded", "task", ch.ID, "status", ch.To, "reason", err)
		} else {
			e.log.Error("spool: record task outcome", "task", ch.ID, "status", ch.To, "err", err)
		}
		return
	}
	e.changed.notify()
	if ch.To == StatusWaiting || ch.To == StatusPending || ch.Hook != nil {
		e.poke() // runnable again, or workflow steps created
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
