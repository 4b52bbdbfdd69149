package spool

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Job is what a handler gets: the task, the attempt, and the means to
// report progress and output. Its methods are safe for concurrent use.
type Job struct {
	// Task is the task as claimed: status processing, Attempt counting this
	// attempt.
	Task *Task
	// Attempt is 1 for the first attempt, 2 for the first retry, and so on.
	// Delivery is at least once: an attempt may repeat one that a crash
	// interrupted.
	Attempt int

	e      *Engine
	logger *slog.Logger

	mu       sync.Mutex
	output   json.RawMessage
	progress int       // highest progress reported
	written  int       // highest progress written
	last     time.Time // when progress was last written
	timer    *time.Timer
	stopped  bool

	results  *Results // a conditions task's verdict
	base     int      // progress taken by a download, which Progress counts from
	fetched  *File    // a url input, downloaded and probed
	outputs  []*File  // files created by the handler
	cleanups []func()
	tempDir  string // made by TempDir, removed with the cleanups
}

// newJob builds the Job for a claimed task, its options in their declared
// types.
func newJob(e *Engine, t *Task) *Job {
	t = e.typed(t)
	return &Job{Task: t, Attempt: t.Attempt, e: e, progress: t.Progress, written: t.Progress}
}

// Engine returns the engine running the job.
func (j *Job) Engine() *Engine { return j.e }

// Logger returns the engine's logger with the task's id and kind.
func (j *Job) Logger() *slog.Logger {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.logger == nil {
		j.logger = j.e.log.With("task", j.Task.ID, "kind", j.Task.Kind)
	}
	return j.logger
}

// SetOutput records v, encoded as JSON, as the task's output. It is stored
// with the completion, in the same transaction, when the handler returns
// nil; a later call replaces an earlier one.
func (j *Job) SetOutput(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("spool: set output: %w", err)
	}
	j.mu.Lock()
	j.output = b
	j.mu.Unlock()
	return nil
}

// Progress reports how far the task is, from 0 to 100. Values are clamped
// to that range, never go backwards, and are written at most once per
// Config.ProgressInterval, so a handler may call Progress in a tight loop.
// When InputPath has downloaded a url input in this attempt, the download
// was the first 10 percent, and pct counts the rest: Progress(50) is 55.
func (j *Job) Progress(pct int) {
	pct = min(max(pct, 0), 100)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.setProgress(j.base + pct*(100-j.base)/100)
}

// report records progress pct of the whole task.
func (j *Job) report(pct int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.setProgress(min(max(pct, 0), 100))
}

// setProgress records progress pct of the whole task, with j.mu held.
func (j *Job) setProgress(pct int) {
	if pct <= j.progress || j.stopped {
		return
	}
	j.progress = pct
	if j.timer != nil {
		return // a write is already scheduled; it takes the latest value
	}
	delay := max(j.e.cfg.ProgressInterval-time.Since(j.last), 0)
	j.timer = time.AfterFunc(delay, j.flush)
}

// flush writes the latest progress.
func (j *Job) flush() {
	j.mu.Lock()
	j.timer = nil
	pct := j.progress
	if j.stopped || pct <= j.written {
		j.mu.Unlock()
		return
	}
	j.written, j.last = pct, time.Now()
	j.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := j.e.store.Apply(ctx, &Change{ID: j.Task.ID, Owner: j.e.inst.ID, AtAttempt: j.Task.Attempt,
		Progress: pct, NoResult: true})
	if err != nil {
		j.Logger().Debug("spool: progress not recorded", "err", err)
		return
	}
	j.e.changed.notify()
}

// stop ends progress reporting when the handler returns.
func (j *Job) stop() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopped = true
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only for File values, which always encode
	}
	return b
}

// upstreamChain returns the steps before this one in its chain, nearest
// first: the step whose next it is, that step's predecessor, and so on up
// to the top of the workflow.
func (j *Job) upstreamChain(ctx context.Context) ([]*Task, error) {
	t := j.Task
	if t.ParentID == "" || t.Step == "" {
		return nil, fmt.Errorf("task %s is not a workflow step: %w", t.ID, ErrNotFound)
	}
	steps, err := j.e.store.Steps(ctx, t.ParentID)
	if err != nil {
		return nil, err
	}
	byPath := make(map[string]*Task, len(steps))
	for _, s := range steps {
		byPath[s.Step] = s
	}
	var chain []*Task
	for path := t.Step; ; {
		i := strings.LastIndex(path, ".next[")
		if i < 0 {
			return chain, nil
		}
		path = path[:i]
		if s := byPath[path]; s != nil {
			chain = append(chain, s)
		}
	}
}

// upstreamNamed is Upstream's choice in chain: the nearest step whose ref
// is name or, if none has that ref, the nearest whose kind is name; nil if
// none.
func upstreamNamed(chain []*Task, name string) *Task {
	for _, s := range chain {
		if s.ref() == name {
			return s
		}
	}
	for _, s := range chain {
		if s.Kind == name {
			return s
		}
	}
	return nil
}
