package spool

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Create validates req, stores the new task and its task.created event, and
// wakes the run loop. A request that fails validation is a
// *ValidationError (matching ErrInvalidRequest) and stores nothing. A
// request whose IdempotencyKey is already used returns the task first
// created with it if it is the same request (a replay), and otherwise a
// *ValidationError matching ErrIdempotencyMismatch that names the first
// field that differs.
func (e *Engine) Create(ctx context.Context, req Request) (*Task, error) {
	ts, err := e.create(ctx, []Request{req}, false)
	if err != nil {
		return nil, err
	}
	return ts[0], nil
}

// CreateMany creates tasks in one transaction: all of them or, if one
// request is invalid or the write fails, none. A ValidationError's field
// names the request: requests[3].url. A request whose idempotency key was
// first used for a different request, earlier or in the same batch, is
// invalid too (ErrIdempotencyMismatch), and the batch stores none; with a
// Store that does not check keys in its transaction (Tx.CreateTasks), the
// rest of the batch is stored before the engine finds it.
func (e *Engine) CreateMany(ctx context.Context, reqs []Request) ([]*Task, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	return e.create(ctx, reqs, true)
}

func (e *Engine) create(ctx context.Context, reqs []Request, many bool) ([]*Task, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	tasks := make([]*Task, len(reqs))
	for i := range reqs {
		t, err := e.newTask(&reqs[i], now)
		var checker TaskChecker
		if err == nil {
			checker, err = e.checkAvailable(t.Kind)
		}
		if err == nil {
			err = e.resolveInput(ctx, t)
		}
		if err == nil && checker != nil {
			err = e.checkTask(ctx, checker, t)
		}
		if err != nil {
			return nil, inBatch(err, i, many)
		}
		tasks[i] = t
		if t.WebhookURL != "" && e.hooks == nil {
			e.noWebhooks.Do(func() {
				e.log.Warn("spool: tasks carry a webhook_url, but this engine sends no webhooks: set Config.Webhooks.Secrets "+
					"(spool serve --webhook-secret or SPOOL_WEBHOOK_SECRET)",
					"task", t.ID)
			})
		}
	}
	var steps []*Task
	for _, t := range tasks {
		steps = append(steps, e.startAtCreate(t, now)...)
	}
	if !many {
		if r := e.reserve(tasks[0]); r != nil {
			out, err := e.handOff(ctx, r)
			if err == nil {
				e.observeCreated(out)
			}
			return out, err
		}
	}
	out, err := e.store.CreateTasks(ctx, append(tasks[:len(tasks):len(tasks)], steps...))
	if err != nil {
		return nil, createError(err, tasks, many)
	}
	out = out[:len(tasks)] // the steps after them are the workflows' own
	e.observeCreated(out)
	e.changed.notify()
	e.poke()
	for i, t := range out {
		if t != tasks[i] {
			if f := requestDiff(t, tasks[i]); f != "" {
				// A store that does not check keys itself returned it.
				return nil, inBatch(keyMismatch(tasks[i].IdempotencyKey, f), i, many)
			}
		}
	}
	for i, t := range out {
		out[i] = e.typed(t)
	}
	return out, nil
}

// handOff stores a task already claimed for the worker reserved for it and
// starts it: one commit from Create to the handler, where going through the
// queue takes two (the insert, then the claim).
func (e *Engine) handOff(ctx context.Context, r *run) ([]*Task, error) {
	defer e.handoffs.Done()
	t, err := e.store.CreateAndClaim(ctx, r.task, &ClaimParams{Owner: e.inst.ID, Now: time.Now(),
		Lease: e.cfg.LeaseDuration})
	if err != nil {
		e.unreserve(r)
		return nil, createError(err, []*Task{r.task}, false)
	}
	e.changed.notify()
	if t.ID != r.task.ID || t.Status != StatusProcessing {
		e.unreserve(r) // an idempotency key matched an earlier task
		if t.ID != r.task.ID {
			if f := requestDiff(t, r.task); f != "" {
				return nil, keyMismatch(r.task.IdempotencyKey, f)
			}
		}
		return []*Task{e.typed(t)}, nil
	}
	r.task = t
	e.sched.hold(r)
	e.launch(r)
	return []*Task{e.typed(t)}, nil
}

// createError wraps a store's error of Create of tasks. ErrNotFound there
// is an input file deleted since resolveInput found it: the request's
// fault. An idempotency key refused by the SQLite store names its request.
func createError(err error, tasks []*Task, many bool) error {
	var sm *storeMismatch
	if errors.As(err, &sm) {
		return inBatch(sm.err, sm.index, many)
	}
	if errors.Is(err, ErrIdempotencyMismatch) {
		// Another Store's refusal (Tx.CreateTasks), which names neither
		// the request nor the field: the key, and in a batch the one
		// request that has a key, if only one has.
		ve := &ValidationError{Field: "idempotency_key", Err: ErrIdempotencyMismatch,
			Reason: err.Error()}
		keyed := -1
		for i, t := range tasks {
			if t.IdempotencyKey != "" {
				if keyed >= 0 {
					return ve // which of them, the store did not say
				}
				keyed = i
			}
		}
		if keyed < 0 {
			return ve
		}
		return inBatch(ve, keyed, many)
	}
	if errors.Is(err, ErrNotFound) {
		return invalid("file_id", "%v (deleted meanwhile)", err)
	}
	return fmt.Errorf("spool: create: %w", err)
}

// inBatch makes a ValidationError of CreateMany's request i name it:
// requests[3].url.
func inBatch(err error, i int, many bool) error {
	var ve *ValidationError
	if !many || !errors.As(err, &ve) {
		return err
	}
	return &ValidationError{Field: fmt.Sprintf("requests[%d].%s", i, ve.Field), Reason: ve.Reason, Err: ve.Err}
}

// resolveInput fills a file_id task's input with the file's record.
func (e *Engine) resolveInput(ctx context.Context, t *Task) error {
	if t.FileID == "" {
		return nil
	}
	f, err := e.store.GetFile(ctx, t.FileID)
	if errors.Is(err, ErrNotFound) {
		return invalid("file_id", "no file %s", t.FileID)
	}
	if err != nil {
		return fmt.Errorf("spool: create: %w", err)
	}
	t.Input = f
	return nil
}

func (e *Engine) usable() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	return nil
}

// Get returns a task, or an error matching ErrNotFound.
func (e *Engine) Get(ctx context.Context, id string) (*Task, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	t, err := e.store.GetTask(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("spool: get: %w", err)
	}
	t = e.typed(t)
	e.liveSummaries(ctx, t)
	return t, nil
}

// maxPage is the highest ListParams.Page.
const maxPage = 1 << 40

// List returns a page of tasks, newest first unless p.Oldest. A nil p lists
// the 20 newest.
func (e *Engine) List(ctx context.Context, p *ListParams) (*TaskPage, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	var lp ListParams
	if p != nil {
		lp = *p
	}
	var err error
	if lp.Limit, err = pageLimit(lp.Limit); err != nil {
		return nil, err
	}
	switch {
	case lp.Page == 0:
		lp.Page = 1
	case lp.Page < 0:
		return nil, invalid("page", "must be 1 or more")
	case lp.Page > maxPage:
		// The rows to skip, (page-1)*limit, must not overflow.
		return nil, invalid("page", "must be at most %d: use the after cursor", maxPage)
	}
	if lp.Status != "" && !lp.Status.Valid() {
		return nil, invalid("status", "%q is not a status", lp.Status)
	}
	if lp.After != "" && !isID(lp.After, "task_") {
		return nil, invalid("after", "%q is not a task id", lp.After)
	}
	page, err := e.store.ListTasks(ctx, &lp)
	if err != nil {
		return nil, fmt.Errorf("spool: list: %w", err)
	}
	for i, t := range page.Tasks {
		page.Tasks[i] = e.typed(t)
		e.liveSummaries(ctx, page.Tasks[i])
	}
	return page, nil
}

// pageLimit checks a page size, 0 meaning the default of 20.
func pageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return 20, nil
	case n < 1 || n > 100:
		return 0, invalid("limit", "must be between 1 and 100")
	}
	return n, nil
}

// Cancel cancels a task that has not finished. A running handler's context
// is cancelled with cause ErrCancelled, at once in this process and at the
// next heartbeat in another. Cancelling a finished task fails with
// ErrInvalidTransition.
func (e *Engine) Cancel(ctx context.Context, id string) (*Task, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	var steps []string
	t, err := e.store.Apply(ctx, &Change{ID: id, To: StatusCancelled, Hook: e.cancelHook(&steps)})
	if err != nil {
		return nil, fmt.Errorf("spool: cancel: %w", err)
	}
	e.obs.each(func(o *Observer) {
		if o.TaskCancelled != nil {
			o.TaskCancelled(t.Kind)
		}
	})
	for _, id := range append(steps, id) {
		for _, r := range e.sched.find(id) {
			r.cancel(ErrCancelled)
		}
	}
	e.changed.notify()
	e.poke() // a cancelled step may have let its workflow's next steps start
	t = e.typed(t)
	e.liveSummaries(ctx, t)
	return t, nil
}

// Delete deletes a finished task, its workflow steps, and the files they
// produced that no other task takes as input: the records in one
// transaction, then the bytes. Its events are no longer delivered from
// then on (to OnEvent, Subscribe or Events), and are pruned with the
// others after EventRetention. Deleting a task that has not finished, or
// whose workflow steps have not, fails with ErrInvalidTransition: cancel
// it first. Bytes that fail to delete are swept up later (OrphanFileAge).
func (e *Engine) Delete(ctx context.Context, id string) error {
	if err := e.usable(); err != nil {
		return err
	}
	files, err := e.store.DeleteTask(ctx, id)
	if err != nil {
		return fmt.Errorf("spool: delete: %w", err)
	}
	if err := e.deleteBytes(ctx, files); err != nil {
		return fmt.Errorf("spool: delete: %w", err)
	}
	return nil
}

// Wait returns the task once it has finished (completed, failed, error or
// cancelled), or ctx's error. It fails at once, with an error matching
// ErrNotFound, for a task that does not exist or was deleted meanwhile.
func (e *Engine) Wait(ctx context.Context, id string) (*Task, error) {
	poll := time.NewTicker(e.cfg.PollInterval)
	defer poll.Stop()
	for {
		changed := e.changed.wait()
		t, err := e.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if t.Status.Terminal() {
			return t, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		case <-poll.C:
		}
	}
}

// Stats counts tasks by status and kind.
func (e *Engine) Stats(ctx context.Context) (*Stats, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	st, err := e.store.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("spool: stats: %w", err)
	}
	return st, nil
}
