package spool

import (
	"encoding/json"
	"fmt"
	"time"
)

// Status is where a task is in its life: pending or waiting before it runs,
// processing while a handler runs it, ready while a workflow parent has some
// usable step outputs, and at last one of the final statuses completed,
// failed, error or cancelled. The allowed changes between them are the
// transitions table below.
type Status string

// The statuses of the hosted API.
const (
	StatusPending    Status = "pending"    // stored, runnable as soon as a worker is free
	StatusWaiting    Status = "waiting"    // not runnable yet: run_at in the future, a retry backing off, a workflow parent
	StatusProcessing Status = "processing" // a handler runs it
	StatusReady      Status = "ready"      // a workflow parent with some usable step outputs
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"    // the task cannot succeed; never retried
	StatusError      Status = "error"     // the system failed, after retries
	StatusCancelled  Status = "cancelled" // cancelled by a caller
)

// statuses is every status in lifecycle order.
var statuses = [...]Status{StatusPending, StatusWaiting, StatusProcessing, StatusReady,
	StatusCompleted, StatusFailed, StatusError, StatusCancelled}

// Statuses returns every status in lifecycle order.
func Statuses() []Status { return append([]Status(nil), statuses[:]...) }

// transitions is the one table of allowed status changes. Stores apply a
// change only while the task's current status is one of the sources listed
// for the target, so two racing updates cannot both win.
var transitions = map[Status][]Status{
	// Requeued: a retry or timed wait released early, a shutdown, a dead worker.
	StatusPending:    {StatusWaiting, StatusProcessing},
	StatusWaiting:    {StatusPending, StatusProcessing},
	StatusProcessing: {StatusPending, StatusWaiting},
	StatusReady:      {StatusWaiting, StatusReady},
	StatusCompleted:  {StatusProcessing, StatusWaiting, StatusReady},
	StatusFailed:     {StatusPending, StatusWaiting, StatusProcessing, StatusReady},
	StatusError:      {StatusPending, StatusWaiting, StatusProcessing, StatusReady},
	StatusCancelled:  {StatusPending, StatusWaiting, StatusProcessing, StatusReady},
}

// CanTransition reports whether a task may go from one status to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[to] {
		if s == from {
			return true
		}
	}
	return false
}

// TransitionSources returns the statuses from which a task may move to to.
// Stores use it to build their conditional updates.
func TransitionSources(to Status) []Status { return transitions[to] }

// Terminal reports whether s is final: completed, failed, error or cancelled.
func (s Status) Terminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusError, StatusCancelled:
		return true
	}
	return false
}

// Valid reports whether s is one of the eight statuses.
func (s Status) Valid() bool {
	for _, v := range statuses {
		if v == s {
			return true
		}
	}
	return false
}

// Task is a unit of work of one kind. It marshals to the task object of the
// hosted API (version 2025-08-20); the fields tagged "-" are spool's own
// bookkeeping and are not part of that object.
type Task struct {
	ID    string
	Kind  string
	Input *File // the input file; nil for kinds without one
	// Options are the kind options, with defaults, plus ref/filename/folder,
	// as JSON data: nil, bool, string, int64, float64, []any and
	// map[string]any. The engine gives a declared option its declared type
	// (an int int64, a number float64; see OptionType) and every other
	// number int64 if it is integral and fits, else float64, so that Create,
	// Get, List, events and the Job show the same values. Job.Int and its
	// siblings read them.
	Options   map[string]any
	Output    json.RawMessage
	Status    Status
	Progress  int
	Error     string
	CreatedBy string
	Created   time.Time
	Updated   time.Time
	ParentID  string
	Workflow  []TaskSummary // a workflow parent's children
	Results   *Results      // a workflow's or conditions task's verdict

	// Request fields that are not options.
	URL            string    `json:"-"`
	FileID         string    `json:"-"`
	WebhookURL     string    `json:"-"`
	IdempotencyKey string    `json:"-"`
	RunAt          time.Time `json:"-"` // zero: as soon as possible; in the JSON as run_at when set
	// Steps are a workflow task's step definitions; on a step, the
	// definitions of its next steps.
	Steps []Step `json:"-"`
	// Step is where a workflow step sits in its workflow's tree, as in
	// workflow[0].next[1]; empty for a task that is not a step.
	Step string `json:"-"`
	// Attempt is the number of times the task has been claimed to run,
	// counting the current one. A claim counts even if the engine dies
	// before starting the handler: an engine claims up to eight times its
	// Concurrency of short tasks ahead of its free workers (never long ones),
	// so a crash can count an attempt for a task that was held, not run.
	Attempt     int `json:"-"`
	MaxAttempts int `json:"-"`
}

// TaskSummary is a workflow child as listed in its parent's workflow field.
type TaskSummary struct {
	ID        string    `json:"id"`
	Object    string    `json:"object"`
	Kind      string    `json:"kind"`
	Status    Status    `json:"status"`
	Progress  int       `json:"progress"`
	Error     *string   `json:"error"`
	CreatedBy string    `json:"created_by,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	ParentID  *string   `json:"parent_id"`
	// Ref and Step are spool's additions to the hosted summary: the step's
	// ref, and where it sits in the workflow (Task.Step), so that a client
	// can draw the tree.
	Ref  string `json:"ref,omitempty"`
	Step string `json:"step,omitempty"`
}

// Results is the verdict of a conditions task or a workflow.
//
// A conditions task lists its conditions in Passed and Failed, each with
// the value it found ("actual", absent when the prop was), and Continue
// is true when every one passed. A workflow lists its completed steps in
// Passed ({id, kind, ref, step, output}), those that ended otherwise in
// Failed ({id, kind, ref, step, status, error}), and the steps that never
// started in Skipped ({step, kind, ref, reason}); Continue is true when
// no step failed. In JSON, a nil Skipped is left out (a conditions task
// skips nothing) and an empty one is [] (a workflow whose steps all
// started), so that a workflow's results always have the key.
type Results struct {
	Passed   []map[string]any `json:"passed"`
	Failed   []map[string]any `json:"failed"`
	Skipped  []map[string]any `json:"skipped,omitempty"`
	Continue bool             `json:"continue"`
}

// MarshalJSON writes Skipped when it is not nil, even empty.
func (r Results) MarshalJSON() ([]byte, error) {
	out := struct {
		Passed   []map[string]any  `json:"passed"`
		Failed   []map[string]any  `json:"failed"`
		Skipped  *[]map[string]any `json:"skipped,omitempty"`
		Continue bool              `json:"continue"`
	}{Passed: r.Passed, Failed: r.Failed, Continue: r.Continue}
	if r.Skipped != nil {
		out.Skipped = &r.Skipped
	}
	return json.Marshal(out)
}

// taskJSON is the wire shape. Empty strings become null, as in the hosted API.
type taskJSON struct {
	ID        string          `json:"id"`
	Object    string          `json:"object"`
	Kind      string          `json:"kind"`
	Input     *File           `json:"input"`
	Options   map[string]any  `json:"options"`
	Output    json.RawMessage `json:"output"`
	Status    Status          `json:"status"`
	Progress  int             `json:"progress"`
	Error     *string         `json:"error"`
	CreatedBy string          `json:"created_by,omitempty"`
	Created   time.Time       `json:"created"`
	Updated   time.Time       `json:"updated"`
	// RunAt is spool's addition, as in the create body: when a task
	// created to run later becomes runnable.
	RunAt    time.Time     `json:"run_at,omitzero"`
	ParentID *string       `json:"parent_id"`
	Workflow []TaskSummary `json:"workflow"`
	Results  *Results      `json:"results"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// MarshalJSON encodes the task object of the hosted API.
func (t Task) MarshalJSON() ([]byte, error) {
	w := taskJSON{
		ID: t.ID, Object: "task", Kind: t.Kind, Input: t.Input, Options: t.Options,
		Output: t.Output, Status: t.Status, Progress: t.Progress, Error: nullable(t.Error),
		CreatedBy: t.CreatedBy, Created: t.Created.UTC(), Updated: t.Updated.UTC(),
		ParentID: nullable(t.ParentID), Workflow: t.Workflow, Results: t.Results,
	}
	if !t.RunAt.IsZero() {
		w.RunAt = t.RunAt.UTC()
	}
	if w.Options == nil {
		w.Options = map[string]any{}
	}
	if w.Workflow == nil {
		w.Workflow = []TaskSummary{}
	}
	if len(w.Output) == 0 {
		w.Output = json.RawMessage("null")
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes the task object of the hosted API.
func (t *Task) UnmarshalJSON(b []byte) error {
	var w taskJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.Object != "" && w.Object != "task" {
		return fmt.Errorf("spool: decode task: object is %q, not \"task\"", w.Object)
	}
	*t = Task{
		ID: w.ID, Kind: w.Kind, Input: w.Input, Options: w.Options, Status: w.Status,
		Progress: w.Progress, CreatedBy: w.CreatedBy, Created: w.Created, Updated: w.Updated,
		Workflow: w.Workflow, Results: w.Results, RunAt: w.RunAt,
	}
	if string(w.Output) != "null" {
		t.Output = w.Output
	}
	if w.Error != nil {
		t.Error = *w.Error
	}
	if w.ParentID != nil {
		t.ParentID = *w.ParentID
	}
	return nil
}

// Summary returns the task as listed in a workflow parent.
func (t *Task) Summary() TaskSummary {
	return TaskSummary{ID: t.ID, Object: "task", Kind: t.Kind, Status: t.Status,
		Progress: t.Progress, Error: nullable(t.Error), CreatedBy: t.CreatedBy,
		Created: t.Created.UTC(), Updated: t.Updated.UTC(), ParentID: nullable(t.ParentID),
		Ref: t.ref(), Step: t.Step}
}

// ref returns the task's ref option.
func (t *Task) ref() string {
	r, _ := t.Options["ref"].(string)
	return r
}

// Event is a change to a task: its creation, a status change or progress.
// Events are written in the same transaction as the change they report.
type Event struct {
	ID   string    `json:"id"` // evt_ + ULID; ordering by id is ordering by commit
	Type EventType `json:"type"`
	Time time.Time `json:"time"`
	// Task is the task as it was right after the change, in every field a
	// change sets: status, progress, error, attempt, updated, and output,
	// which shows only on the completion's event. The other fields are
	// the task's as it is when the event is read: the input, once a url
	// input has been downloaded and probed, shows its media details on
	// the earlier events too.
	Task *Task `json:"task"`
}

// EventType names what happened: task.created, task.progress, or
// task.<status> for a status change.
type EventType string

// Event types other than the task.<status> ones, which EventFor builds.
const (
	EventCreated  EventType = "task.created"
	EventProgress EventType = "task.progress"
)

// EventFor returns the event type of a change to status s.
func EventFor(s Status) EventType { return EventType("task." + string(s)) }
