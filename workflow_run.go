package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// A workflow runs like this. One on a stored file is stored waiting with
// its top-level steps, in Create's transaction (startAtCreate). One on a
// url (or with an idempotency key or a run_at) runs first: its own run
// fetches and probes a url input, then moves the workflow to waiting and,
// in the same transaction, creates its top-level steps (advance). Every
// step's final outcome runs stepDone
// in the transaction that records it: the step's next steps are created,
// and when no step is left unfinished the workflow's status, results and
// summaries are worked out afresh from all its steps (advance again).
// Since the count and advance read the steps inside the transaction, two
// steps finishing in one group commit both count; since a step is only
// ever created by the transaction that makes it due, a crash at any point
// leaves nothing lost and nothing run twice.

// startAtCreate stores a workflow on a stored file waiting from the start,
// and returns its top-level steps, to be stored with it in the same
// transaction: it has nothing of its own to run (a url input is what its
// own run fetches), so a claim, a run and an outcome with their events
// would only delay its steps. Not for a workflow with an idempotency key
// (an earlier one with that key may be returned instead, whose steps must
// not be made again) or a run_at: those run as before.
func (e *Engine) startAtCreate(t *Task, now time.Time) []*Task {
	if t.Kind != KindWorkflow || t.FileID == "" || t.IdempotencyKey != "" || !t.RunAt.IsZero() ||
		t.Status != StatusPending {
		return nil
	}
	t.Status = StatusWaiting
	p := e.plan(t, nil, now)
	t.Workflow = p.summaries
	return p.create
}

// workflowHandler is the workflow kind's own run: fetching the input.
type workflowHandler struct{}

// Handle fetches and probes a url input, so that every step gets the same
// file and conditions can test it.
func (workflowHandler) Handle(ctx context.Context, job *Job) error {
	if in := job.Input(); in != nil && in.ID == "" && in.URL != "" {
		_, err := job.InputPath(ctx)
		return err
	}
	return nil
}

// afterOutcome returns the hook that goes with a run's outcome ch of task
// t, chained after the hook the outcome already has (the files it
// records): a workflow's steps start, a conditions task's results are
// recorded, a step's workflow advances.
func (e *Engine) afterOutcome(t *Task, ch *Change, results *Results) {
	startSteps := t.Kind == KindWorkflow && ch.To == StatusWaiting && ch.Due.IsZero()
	stepDone := t.ParentID != "" && ch.To.Terminal()
	if !startSteps && !stepDone && results == nil {
		return
	}
	// The task after the change, from what the run knows: the outcome is
	// applied with NoResult, which spares reading the row back.
	after := *t
	after.Status, after.Error = ch.To, ch.Error
	if ch.To == StatusCompleted {
		after.Output, after.Progress = ch.Output, 100
	}
	if ch.Input != nil {
		after.Input = ch.Input
	}
	changed := &after
	// Only a hook that creates no step may run after other changes: a
	// sibling's count of unfinished steps must never see this one ended
	// before its next steps exist. One that ends the workflow reads the
	// steps as they are when it runs, all changes made before it included.
	creates := startSteps || stepDone && e.startsNext(t, ch.To, results)
	ch.LateHook = (ch.Hook == nil || ch.LateHook) && !creates
	prev := ch.Hook
	ch.Hook = func(ctx context.Context, tx Tx, row *Task) error {
		if prev != nil {
			if err := prev(ctx, tx, row); err != nil {
				return err
			}
		}
		if results != nil && ch.To == StatusCompleted {
			if err := tx.SetResults(ctx, t.ID, results, nil, 0); err != nil {
				return err
			}
		}
		if startSteps {
			return e.advance(ctx, tx, changed)
		}
		if stepDone {
			return e.stepDone(ctx, tx, changed, results)
		}
		return nil
	}
}

// stepDone is the part of a step's final outcome that concerns its
// workflow: its next steps start, and the workflow's status follows. Most
// outcomes need no more than that and a count; the workflow is worked out
// afresh (advance) when its last step ends. Meanwhile its progress,
// results and summaries are worked out when it is read (liveSummaries):
// recording them on every step's outcome cost more than the step itself.
func (e *Engine) stepDone(ctx context.Context, tx Tx, step *Task, results *Results) error {
	completed := step.Status == StatusCompleted
	if e.startsNext(step, step.Status, results) {
		now := time.Now().UTC()
		next := make([]*Task, len(step.Steps))
		for i, def := range step.Steps {
			next[i] = e.stepTask(step, def, fmt.Sprintf("%s.next[%d]", step.Step, i), step, now)
		}
		if err := createSteps(ctx, tx, next); err != nil {
			return fmt.Errorf("create next steps of %s: %w", step.ID, err)
		}
	}
	n, status, err := tx.UnfinishedSteps(ctx, step.ParentID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil // deleted meanwhile: nothing to advance
	case err != nil:
		return err
	case status.Terminal():
		return nil // the workflow was cancelled: its steps start no more
	case n == 0:
		return e.advanceParent(ctx, tx, step.ParentID)
	case completed && status == StatusWaiting:
		_, err := tx.Apply(ctx, &Change{ID: step.ParentID, To: StatusReady, NoResult: true})
		return err
	}
	return nil
}

// startsNext reports whether a step's end with status to starts its next
// steps: on completion, unless it is a condition that did not hold.
func (e *Engine) startsNext(step *Task, to Status, results *Results) bool {
	return to == StatusCompleted && len(step.Steps) > 0 &&
		(step.Kind != KindConditions || results != nil && results.Continue)
}

// advanceParent advances the workflow a step belongs to.
func (e *Engine) advanceParent(ctx context.Context, tx Tx, parentID string) error {
	if vr, ok := tx.(verdictReader); ok {
		parent, steps, err := vr.verdictTasks(ctx, parentID)
		if errors.Is(err, ErrNotFound) {
			return nil // deleted meanwhile: nothing to advance
		}
		if err != nil {
			return err
		}
		if !advances(parent) {
			return nil
		}
		if st := e.plan(parent, steps, time.Now().UTC()); len(st.create) == 0 {
			return e.settleWorkflow(ctx, tx, parent, st)
		}
		// Steps to create are made from whole tasks: read them.
	}
	parent, err := tx.GetTask(ctx, parentID)
	if errors.Is(err, ErrNotFound) {
		return nil // deleted meanwhile: nothing to advance
	}
	if err != nil {
		return err
	}
	return e.advance(ctx, tx, parent)
}

// advance creates the workflow's steps that may start and are missing,
// and, when its status changes, records it with its results, summaries and
// progress, inside tx. A finished workflow is left as it is.
func (e *Engine) advance(ctx context.Context, tx Tx, parent *Task) error {
	if !advances(parent) {
		return nil
	}
	steps, err := tx.Steps(ctx, parent.ID)
	if err != nil {
		return err
	}
	st := e.plan(parent, steps, time.Now().UTC())
	if len(st.create) > 0 {
		if err := createSteps(ctx, tx, st.create); err != nil {
			return fmt.Errorf("create steps of %s: %w", parent.ID, err)
		}
	}
	return e.settleWorkflow(ctx, tx, parent, st)
}

// advances reports whether a workflow in its state is advanced by its
// steps: not before it has started them, nor once it has finished.
func advances(parent *Task) bool {
	return !parent.Status.Terminal() && parent.Status != StatusPending && parent.Status != StatusProcessing
}

// settleWorkflow records the verdict st on the workflow, inside tx, when
// its status changes.
func (e *Engine) settleWorkflow(ctx context.Context, tx Tx, parent *Task, st *workflowPlan) error {
	if st.status == parent.Status {
		return nil // reads work the rest out (liveSummaries)
	}
	ch := &Change{ID: parent.ID, To: st.status, Error: st.errMsg, Progress: st.progress, NoResult: true}
	if _, err := tx.Apply(ctx, ch); err != nil {
		return fmt.Errorf("advance workflow %s: %w", parent.ID, err)
	}
	return tx.SetResults(ctx, parent.ID, st.results, st.summaries, st.progress)
}

// createSteps creates steps inside tx. A step whose input file was
// deleted meanwhile is created all the same, without file_id, and fails on
// its missing input as any task does: failing the outcome that creates it
// would run that outcome's task again, for good.
func createSteps(ctx context.Context, tx Tx, steps []*Task) error {
	_, err := tx.CreateTasks(ctx, steps)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	for _, t := range steps { // CreateTasks checks before it inserts: none is stored
		if _, err = tx.CreateTasks(ctx, []*Task{t}); errors.Is(err, ErrNotFound) {
			t.FileID = ""
			_, err = tx.CreateTasks(ctx, []*Task{t})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// workflowPlan is a workflow's state worked out from its steps.
type workflowPlan struct {
	create    []*Task // steps to create now
	summaries []TaskSummary
	results   *Results
	status    Status
	errMsg    string
	progress  int
}

// plan works out a workflow's state from its steps: which steps start
// now, which can never start, and the status that follows. A cancelled
// parent starts nothing and counts every step not yet started as skipped.
func (e *Engine) plan(parent *Task, steps []*Task, now time.Time) *workflowPlan {
	byPath := make(map[string]*Task, len(steps))
	for _, s := range steps {
		if s.Step != "" {
			byPath[s.Step] = s
		}
	}
	p := &workflowPlan{results: &Results{Passed: []map[string]any{}, Failed: []map[string]any{}, Skipped: []map[string]any{}}}
	var (
		running, completed, total, done int
		failed, errored                 []string
		anyFailed                       bool
	)
	// walk visits the steps defs, which follow pred (nil for the top
	// level). skip, when set, is why none of them can start; later, when
	// they wait for a predecessor that has not finished (or not started).
	var walk func(defs []Step, prefix string, pred *Task, skip string, later bool)
	walk = func(defs []Step, prefix string, pred *Task, skip string, later bool) {
		for i, def := range defs {
			path := fmt.Sprintf("%s[%d]", prefix, i)
			total++
			child := byPath[path]
			if child == nil {
				switch {
				case parent.Status == StatusCancelled:
					skip = "the workflow was cancelled"
				case skip != "":
				case later || pred != nil && pred.Status != StatusCompleted:
					running++
					walk(def.Next, path+".next", nil, "", true)
					continue
				default:
					child = e.stepTask(parent, def, path, pred, now)
					p.create = append(p.create, child)
				}
			}
			if child == nil {
				p.results.Skipped = append(p.results.Skipped, withRef(map[string]any{
					"step": path, "kind": def.Kind, "reason": skip}, def.Ref))
				done++
				walk(def.Next, path+".next", nil, skip, false)
				continue
			}
			p.summaries = append(p.summaries, child.Summary())
			next := ""
			switch child.Status {
			case StatusCompleted:
				completed++
				done++
				p.results.Passed = append(p.results.Passed, withRef(map[string]any{"id": child.ID, "kind": child.Kind,
					"step": path, "output": child.Output}, def.Ref))
				if child.Kind == KindConditions && (child.Results == nil || !child.Results.Continue) {
					next = "the conditions of " + path + " did not all pass"
				}
			case StatusFailed, StatusError, StatusCancelled:
				done++
				anyFailed = true
				msg := child.Error
				if msg == "" {
					msg = string(child.Status)
				}
				p.results.Failed = append(p.results.Failed, withRef(map[string]any{"id": child.ID, "kind": child.Kind,
					"step": path, "status": child.Status, "error": msg}, def.Ref))
				line := fmt.Sprintf("%s (%s): %s", path, child.Kind, msg)
				if child.Status == StatusError {
					errored = append(errored, line)
				} else {
					failed = append(failed, line)
				}
				next = fmt.Sprintf("%s (%s) ended %s", path, child.Kind, child.Status)
			default:
				running++
				p.progress += child.Progress
			}
			if skip != "" {
				next = skip
			}
			walk(def.Next, path+".next", child, next, false)
		}
	}
	walk(parent.Steps, "workflow", nil, "", false)
	p.results.Continue = !anyFailed
	if total > 0 {
		p.progress = (p.progress + 100*done) / total
	}
	switch {
	case parent.Status == StatusCancelled:
		p.status = StatusCancelled
	case running > 0 && completed > 0:
		p.status = StatusReady
	case running > 0:
		p.status = StatusWaiting
	case len(failed) > 0:
		p.status, p.errMsg = StatusFailed, strings.Join(append(failed, errored...), "; ")
	case len(errored) > 0:
		p.status, p.errMsg = StatusError, strings.Join(errored, "; ")
	default:
		p.status, p.progress = StatusCompleted, 100
	}
	return p
}

// withRef adds a step's ref to a results entry, when it has one.
func withRef(m map[string]any, ref string) map[string]any {
	if ref != "" {
		m["ref"] = ref
	}
	return m
}

// stepTask builds the task of step def at path, which follows pred (nil
// for a top-level step). It takes from from (the workflow, or a step of it)
// the workflow's id and what steps inherit.
func (e *Engine) stepTask(from *Task, def Step, path string, pred *Task, now time.Time) *Task {
	parentID := from.ID
	if from.ParentID != "" {
		parentID = from.ParentID
	}
	opts := maps.Clone(def.Options)
	if opts == nil {
		opts = map[string]any{}
	}
	if def.Ref != "" {
		opts["ref"] = def.Ref
	}
	t := &Task{ID: e.ids.next("task_", now), Kind: def.Kind, Options: opts, Status: StatusPending,
		CreatedBy: from.CreatedBy, Created: now, Updated: now, ParentID: parentID, Step: path,
		Steps: def.Next, WebhookURL: from.WebhookURL, MaxAttempts: from.MaxAttempts, URL: def.URL}
	if t.MaxAttempts == 0 {
		t.MaxAttempts = e.cfg.MaxAttempts
	}
	if spec, _ := e.spec(def.Kind); spec != nil && spec.Input == InputNone {
		return t
	}
	in := from.Input
	if pred != nil {
		in = pred.Input
		if f := outputFile(pred.Output); f != nil {
			in = f
		}
	}
	if in != nil && in.ID != "" {
		t.Input, t.FileID = in, in.ID
	}
	return t
}

// outputFile returns the file an output is, or the first file of an
// output that is a list of files, or nil.
func outputFile(out json.RawMessage) *File {
	if len(out) == 0 {
		return nil
	}
	var f File
	if out[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(out, &list) != nil || len(list) == 0 {
			return nil
		}
		out = list[0]
	}
	if json.Unmarshal(out, &f) != nil || !isID(f.ID, "file_") || f.Object == "" {
		return nil
	}
	return &f
}

// cancelSteps cancels, inside tx, the unfinished steps of a workflow that
// has just been cancelled, records its results, and returns the ids of the
// steps it cancelled, whose runs the caller stops.
func (e *Engine) cancelSteps(ctx context.Context, tx Tx, parent *Task) ([]string, error) {
	steps, err := tx.Steps(ctx, parent.ID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for i, s := range steps {
		if s.Status.Terminal() {
			continue
		}
		t, err := tx.Apply(ctx, &Change{ID: s.ID, To: StatusCancelled})
		if err != nil {
			return nil, fmt.Errorf("cancel step %s: %w", s.ID, err)
		}
		steps[i] = t
		ids = append(ids, s.ID)
	}
	p := e.plan(parent, steps, time.Now().UTC())
	return ids, tx.SetResults(ctx, parent.ID, p.results, p.summaries, 0)
}

// cancelHook is the hook of Cancel: a cancelled workflow cancels its
// steps, and a cancelled step advances its workflow. It appends to ids the
// steps it cancelled.
func (e *Engine) cancelHook(ids *[]string) func(ctx context.Context, tx Tx, t *Task) error {
	return func(ctx context.Context, tx Tx, t *Task) error {
		*ids = (*ids)[:0] // the writer may run a hook again after a retry
		if t.Kind == KindWorkflow {
			cancelled, err := e.cancelSteps(ctx, tx, t)
			if err != nil {
				return err
			}
			*ids = append(*ids, cancelled...)
		}
		if t.ParentID != "" {
			return e.advanceParent(ctx, tx, t.ParentID)
		}
		return nil
	}
}

// liveSummaries refreshes a workflow's step summaries from its steps, so
// that a read shows their status and progress as they are now, not as at
// the workflow's last recorded change; and, while it runs, its progress
// and results, which are recorded only when its status changes.
func (e *Engine) liveSummaries(ctx context.Context, t *Task) {
	if t.Kind != KindWorkflow || len(t.Steps) == 0 || t.Status == StatusPending || t.Status == StatusProcessing {
		return
	}
	steps, err := e.store.Steps(ctx, t.ID)
	if err != nil {
		return // the stored summaries will do
	}
	p := e.plan(t, steps, time.Now())
	// A step plan would create is one deleted from a finished workflow,
	// not one that exists.
	t.Workflow = slices.DeleteFunc(p.summaries, func(s TaskSummary) bool {
		return slices.ContainsFunc(p.create, func(c *Task) bool { return c.ID == s.ID })
	})
	if !t.Status.Terminal() {
		t.Progress = max(t.Progress, p.progress)
		t.Results = p.results
	}
}

// Upstream returns the nearest earlier step in this step's chain (the step
// whose next it is, that step's predecessor, and so on up to the top of the
// workflow) whose ref is name or, if none has that ref, whose kind is
// name, with its Output and Results as they are now. A subtitles step
// reads the transcript of the speech step before it with
// job.Upstream(ctx, "speech"). A conditions step's <ref>.<field> names
// the step this returns for the longest ref or kind that fits. It fails
// with ErrNotFound when no earlier step matches, as it does for a task
// that is not a workflow step.
func (j *Job) Upstream(ctx context.Context, name string) (*Task, error) {
	chain, err := j.upstreamChain(ctx)
	if err != nil {
		return nil, fmt.Errorf("spool: upstream %q: %w", name, err)
	}
	if s := upstreamNamed(chain, name); s != nil {
		return j.e.typed(s), nil
	}
	return nil, fmt.Errorf("spool: upstream %q: no earlier step of %s has that ref or kind: %w", name, j.Task.Step, ErrNotFound)
}

// WorkflowResults returns the results of the workflow this task is a step
// of as they are now, as Get shows them while it runs: its completed steps
// with their outputs in Passed, those that ended otherwise in Failed, and
// those that will never start in Skipped; steps still to run or running
// (this one) are in none. An http step with no body sends them. It fails
// with ErrNotFound for a task that is not a workflow step.
func (j *Job) WorkflowResults(ctx context.Context) (*Results, error) {
	t := j.Task
	if t.ParentID == "" || t.Step == "" {
		return nil, fmt.Errorf("spool: workflow results: task %s is not a workflow step: %w", t.ID, ErrNotFound)
	}
	parent, err := j.e.store.GetTask(ctx, t.ParentID)
	if err != nil {
		return nil, fmt.Errorf("spool: workflow results: %w", err)
	}
	steps, err := j.e.store.Steps(ctx, t.ParentID)
	if err != nil {
		return nil, fmt.Errorf("spool: workflow results: %w", err)
	}
	return j.e.plan(parent, steps, time.Now()).results, nil
}

// errPlanChanged rolls back a repair that raced with a step's outcome.
var errPlanChanged = errors.New("workflow changed meanwhile")

// repairWorkflows finishes the workflows whose last step ended without
// its outcome's hook: a step whose lease ran out on its last attempt, or
// whose stored row could not be read, ends in error from the store alone.
// Every other way a step ends advances its workflow in the same
// transaction, so this finds nothing then.
func (e *Engine) repairWorkflows(ctx context.Context) error {
	for _, status := range []Status{StatusWaiting, StatusReady} {
		if err := e.repairPages(ctx, status); err != nil {
			return err
		}
	}
	return nil
}

// repairPages repairs the stalled workflows of a status, a page at a time:
// the oldest waiting ones may wait for good on steps no engine runs, and
// must not hide the newer ones.
func (e *Engine) repairPages(ctx context.Context, status Status) error {
	if sf, ok := e.store.(stalledFinder); ok {
		return e.repairFound(ctx, sf, status)
	}
	lp := &ListParams{Kind: KindWorkflow, Status: status, Limit: 100, Oldest: true}
	for {
		page, err := e.store.ListTasks(ctx, lp)
		if err != nil {
			return err
		}
		for _, t := range page.Tasks {
			if err := e.repairOne(ctx, t); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		lp.After = page.Next
	}
}

// stalledFinder is implemented by a store that finds, with one query a
// page, the workflows of a status that have steps and none unfinished:
// the only ones a repair may advance. Without it, repairs read every
// waiting workflow and count its steps, which at the start of a burst of
// 2,000 workflows took a tenth of the CPU time.
type stalledFinder interface {
	stalledWorkflows(ctx context.Context, status Status, after string, limit int) ([]string, error)
}

// repairFound repairs the workflows sf finds, a page at a time.
func (e *Engine) repairFound(ctx context.Context, sf stalledFinder, status Status) error {
	const page = 100
	after := ""
	for {
		ids, err := sf.stalledWorkflows(ctx, status, after, page)
		if err != nil {
			return err
		}
		for _, id := range ids {
			t, err := e.store.GetTask(ctx, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if t.Status != status {
				continue
			}
			if err := e.repairOne(ctx, t); err != nil {
				return err
			}
		}
		if len(ids) < page {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// repairOne advances a workflow none of whose steps runs, if its steps
// say it should have moved on.
func (e *Engine) repairOne(ctx context.Context, t *Task) error {
	if len(t.Steps) == 0 {
		return nil // waiting on a run_at or a retry, not on steps
	}
	// Only a workflow none of whose steps runs can be stalled: a count
	// spares reading the steps of every running workflow.
	if n, _, err := e.store.UnfinishedSteps(ctx, t.ID); err != nil || n > 0 {
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	}
	steps, err := e.store.Steps(ctx, t.ID)
	if err != nil {
		return err
	}
	if len(steps) == 0 {
		return nil
	}
	p := e.plan(t, steps, time.Now().UTC())
	if p.status == t.Status {
		return nil
	}
	hook := func(ctx context.Context, tx Tx, changed *Task) error {
		steps, err := tx.Steps(ctx, changed.ID)
		if err != nil {
			return err
		}
		again := e.plan(changed, steps, time.Now().UTC())
		if again.status != p.status {
			return errPlanChanged
		}
		if len(again.create) > 0 {
			if _, err := tx.CreateTasks(ctx, again.create); err != nil {
				return err
			}
		}
		return tx.SetResults(ctx, changed.ID, again.results, again.summaries, again.progress)
	}
	ch := &Change{ID: t.ID, To: p.status, Error: p.errMsg, Progress: p.progress, Hook: hook}
	_, err = e.store.Apply(ctx, ch)
	switch {
	case errors.Is(err, errPlanChanged), errors.Is(err, ErrInvalidTransition):
		// A step's outcome got there first.
	case err != nil:
		return err
	default:
		e.log.Info("spool: advanced a stalled workflow", "task", t.ID, "status", p.status)
		e.changed.notify()
		e.poke()
	}
	return nil
}
