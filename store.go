package spool

import (
	"context"
	"encoding/json"
	"time"
)

// Tx is what a store offers inside one write transaction. Store implements
// it too, each call being its own transaction; a Change's Hook receives the
// transaction the change runs in, so that what it writes commits or rolls
// back with the change.
type Tx interface {
	// GetTask returns the task, or an error matching ErrNotFound.
	GetTask(ctx context.Context, id string) (*Task, error)
	// CreateTasks stores new tasks, each with its task.created event, all or
	// none. A task whose IdempotencyKey is already stored is not stored
	// again: the stored task takes its place in the result. A store may
	// instead fail them all with an error matching ErrIdempotencyMismatch
	// if the stored task was made by a different request (the SQLite store
	// does; the engine reports another store's as a ValidationError on
	// idempotency_key); the engine refuses such a request either way, but
	// only a store that checks keeps the rest of a CreateMany batch from
	// being stored. A task whose FileID names no stored file fails them all with
	// ErrNotFound, checked in the same transaction, so a file deleted
	// meanwhile is never taken.
	CreateTasks(ctx context.Context, tasks []*Task) ([]*Task, error)
	// Apply makes one change to a task and returns the task after it. It
	// fails with ErrInvalidTransition if the task's status is not a source of
	// the change's target, or if Owner is set and the task is not processing
	// under Owner's lease; with ErrNotFound if there is no such task.
	Apply(ctx context.Context, ch *Change) (*Task, error)
	// CreateFiles stores file records, all or none.
	CreateFiles(ctx context.Context, files []*File) error
	// Steps returns the workflow steps of the task parentID (the tasks whose
	// ParentID it is), oldest first.
	Steps(ctx context.Context, parentID string) ([]*Task, error)
	// UnfinishedSteps counts the steps of the workflow parentID that have
	// not finished, and returns the workflow's status, or an error
	// matching ErrNotFound if there is no such task.
	UnfinishedSteps(ctx context.Context, parentID string) (int, Status, error)
	// SetResults records on a task, whatever its status, its Results, and
	// its step summaries (Task.Workflow) when steps is not nil, and raises
	// its progress to progress: what a workflow or conditions task reports
	// beside its status. A raised progress writes a task.progress event, as
	// any progress change does. It fails with ErrNotFound if there is no
	// such task.
	SetResults(ctx context.Context, id string, r *Results, steps []TaskSummary, progress int) error
}

// Store persists tasks and their events. The engine is written against it;
// the SQLite store is the default, and spooltest.TestStore is the
// conformance suite every implementation must pass.
//
// A task's Options come back as encoding/json decodes them, except that a
// number may be int64 or float64 (the SQLite store gives int64 to integral
// numbers that fit): the engine converts options to their declared types.
//
// Every status or progress change a store makes writes its event in the
// same transaction. Concurrent Apply calls may be committed together (group
// commit), each change still atomic on its own.
//
// A write that returns an error has made no change, and one that returns
// nil has made it. A write whose context ends while it waits (for another
// process's lock, say) returns soon after with the context's error, and is
// not made, unless it is already being committed: then it returns the
// commit's outcome.
type Store interface {
	Tx

	// ListTasks returns a page of tasks matching p.
	ListTasks(ctx context.Context, p *ListParams) (*TaskPage, error)
	// CreateAndClaim stores t, as CreateTasks does, and in the same
	// transaction claims it for p.Owner (p.Batches are ignored) if it is
	// pending: an idle engine hands a new task straight to a worker with
	// one commit. It returns the task after: processing on attempt 1, or
	// the stored task unclaimed if an idempotency key matched it.
	CreateAndClaim(ctx context.Context, t *Task, p *ClaimParams) (*Task, error)
	// ClaimTasks moves runnable tasks (due at or before p.Now) to processing
	// under p.Owner's lease, oldest due first, at most each batch's Limit
	// from that batch's kinds, and counts an attempt for each. On an error
	// it claims and returns nothing. A claimed row that cannot be decoded
	// is not returned: it ends in error with the reason, in the same
	// transaction, so that one bad row never stalls the queue.
	ClaimTasks(ctx context.Context, p *ClaimParams) ([]*Task, error)
	// NextDue returns when the earliest waiting task of one of kinds becomes
	// runnable, or the zero time if none is waiting on a time.
	NextDue(ctx context.Context, kinds []string) (time.Time, error)
	// DeleteTask deletes a finished task, its workflow steps, and, in the
	// same transaction, the records of the files they produced (File.TaskID)
	// that no remaining task uses as input (by FileID, or an Input whose ID
	// names it). It returns the file records it deleted, whose bytes are
	// the caller's to delete. The task's events are no longer returned by
	// Events from then on, and PruneEvents deletes them with the others.
	DeleteTask(ctx context.Context, id string) ([]*File, error)
	// DeleteFinished deletes, in one transaction, up to limit top-level
	// tasks with the final status that finished (Task.Updated) before
	// before, oldest first, each as DeleteTask does, and returns how many it
	// deleted and the file records it deleted. Workflow steps are left to
	// their parent. A status that is not final is an error. Task ids sort
	// by creation (the engine's are ULIDs of their creation time), so a
	// store may look only at ids made before before.
	DeleteFinished(ctx context.Context, status Status, before time.Time, limit int) (int, []*File, error)
	// Stats counts tasks by kind and status.
	Stats(ctx context.Context) (*Stats, error)

	// GetFile returns a file record, or an error matching ErrNotFound.
	GetFile(ctx context.Context, id string) (*File, error)
	// ListFiles returns up to p.Limit file records, newest first.
	ListFiles(ctx context.Context, p *FileListParams) ([]*File, error)
	// DeleteFile deletes a file record (not its bytes). It deletes nothing
	// and fails with an error matching ErrFileInUse while a task that is
	// not finished takes the file as input (by FileID, or an Input whose ID
	// names it, a url task's fetched input included).
	DeleteFile(ctx context.Context, id string) error

	// Heartbeat records that inst is alive and renews for lease, counted
	// from the moment the renewal commits, the lease of those of the tasks
	// held that are still processing under its lease, and returns their
	// ids, so that the caller can stop handlers whose task was cancelled or
	// taken away. A task the caller no longer lists keeps its old lease,
	// which runs out. Counting from the commit matters: a renewal that
	// waited behind another process's write longer than the lease must not
	// commit a lease that has already ended.
	Heartbeat(ctx context.Context, inst *Instance, lease time.Duration, held []string) ([]string, error)
	// Instances lists the registered engine instances.
	Instances(ctx context.Context) ([]*Instance, error)
	// Recover returns to pending the processing tasks held by the dead
	// instances or whose lease ended before now, and forgets the dead
	// instances. A recovered task that has used all its attempts ends in
	// error instead. It returns the number of tasks recovered.
	Recover(ctx context.Context, dead []string, now time.Time) (int, error)
	// RemoveInstance forgets an instance that stopped cleanly.
	RemoveInstance(ctx context.Context, id string) error

	// Events returns up to limit events committed after the event with id
	// after ("" for the first), oldest first, leaving out those of deleted
	// tasks. It returns fewer than limit only when there are no more.
	Events(ctx context.Context, after string, limit int) ([]*Event, error)
	// LastEventID returns the id of the newest event, or "".
	LastEventID(ctx context.Context) (string, error)
	// PruneEvents deletes the events older than before that every stored
	// cursor has passed, and returns how many it deleted: a reader with a
	// stored cursor never misses an event, however far behind it is.
	// Events created later still sort after every id handed out before.
	PruneEvents(ctx context.Context, before time.Time) (int, error)
	// Cursor returns the event id stored under name, or "".
	Cursor(ctx context.Context, name string) (string, error)
	// SetCursor stores an event id under name. A cursor never moves
	// backwards: an id before the stored one leaves it where it is, so
	// readers that share a name keep the furthest position any of them
	// saved.
	SetCursor(ctx context.Context, name, eventID string) error
	// DeleteCursor forgets a stored cursor, so that the events it held
	// back can be pruned. Deleting a cursor that does not exist is not an
	// error.
	DeleteCursor(ctx context.Context, name string) error

	// DispatchDeliveries turns the events after the cursor p.Cursor (from
	// the first if none is stored), up to p.Limit of them, into webhook
	// deliveries and moves the cursor past them, in one transaction: an
	// event is never turned into deliveries twice, nor pruned before it
	// is. An event makes a delivery, keyed by its id, if its task has a
	// webhook_url (or p.URL is set), it is not task.progress (unless
	// p.Progress, and then not one followed by a later event of its task
	// among those read), and its task still exists. A delivery is stored
	// pending, due at p.Now if its task has no earlier pending delivery,
	// else queued behind it with no due time; or disabled, if its URL is a
	// disabled endpoint. It returns how many events it read and how many
	// deliveries it made.
	DispatchDeliveries(ctx context.Context, p *DispatchParams) (events, made int, err error)
	// ClaimDeliveries leases to owner, until lease after the claim commits,
	// up to limit pending deliveries due at or before now, earliest first,
	// and returns them with their Task, without their Attempts. Only the oldest pending
	// delivery of each task is ever due, so a task's deliveries are sent in
	// order; a leased delivery is due again when its lease ends, so no two
	// owners hold it at once.
	ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*Delivery, error)
	// RecordDelivery records a sender's attempt and the delivery's new
	// state, if r.Owner still holds its lease (else ErrInvalidTransition).
	// A delivery that ends (any state but pending) makes its task's next
	// pending delivery due at once, in the same transaction; with r.Lease
	// set, it leases that delivery to r.Owner instead and returns it (nil
	// if there is none), so that the sender goes on with the task without
	// a claim. Disabling an endpoint (r.Disable) records it and disables
	// the endpoint's other pending deliveries that no owner holds.
	RecordDelivery(ctx context.Context, r *DeliveryRecord) (*Delivery, error)
	// Deliveries returns a task's deliveries, oldest first, with their
	// Task and their attempts, oldest first.
	Deliveries(ctx context.Context, taskID string) ([]*Delivery, error)
	// NextDelivery returns when the earliest pending delivery is due (its
	// next attempt, or the end of a sender's lease), or the zero time if
	// none is.
	NextDelivery(ctx context.Context) (time.Time, error)
	// WebhookEndpoints lists the disabled endpoints.
	WebhookEndpoints(ctx context.Context) ([]*WebhookEndpoint, error)
	// EnableEndpoint enables a disabled endpoint again: deliveries made
	// from then on are sent. Enabling one that is not disabled is not an
	// error.
	EnableEndpoint(ctx context.Context, url string) error
	// PruneDeliveries deletes the deliveries that ended (delivered, failed
	// or disabled) before before, with their attempts, and returns how
	// many it deleted. Pending deliveries are kept however old.
	PruneDeliveries(ctx context.Context, before time.Time) (int, error)

	// Close releases the store's connections.
	Close() error
}

// Change is one change to a task, applied by Tx.Apply.
type Change struct {
	ID string
	// To is the new status; empty keeps the status (a progress change).
	To Status
	// Owner, when set, applies the change only while the task is processing
	// under this instance's lease, so a worker whose task was taken back
	// cannot finish it.
	Owner string
	// Progress raises the task's progress; it never goes back. To completed
	// sets it to 100.
	Progress int
	// Output is recorded with the change when not nil.
	Output json.RawMessage
	// Input, when not nil, replaces the task's input: a url input once it
	// has been fetched and probed.
	Input *File
	// Error is the task's error message after the change. A change to
	// pending, processing or completed clears it.
	Error string
	// Due is when a task going to pending or waiting becomes runnable. Zero
	// means now for pending, and never by time for waiting (a workflow
	// parent, woken by its children).
	Due time.Time
	// Attempt is added to the task's attempt count: -1 gives back the
	// attempt of a run that a shutdown interrupted.
	Attempt int
	// AtAttempt, when not 0, applies the change only while the task is on
	// this attempt: with Owner, only while the claim that started this run
	// holds the task, not a later claim of the same engine.
	AtAttempt int
	// Time of the change. Defaults to now.
	Time time.Time
	// Hook, when set, runs in the same transaction right after the change
	// with the changed task (nil with NoResult); its error rolls the change
	// back.
	Hook func(ctx context.Context, tx Tx, t *Task) error
	// LateHook lets a store run Hook after other changes of the same
	// transaction were made, rather than right after this one: a store may
	// then make several such changes with one statement and run their
	// hooks after it. The engine sets it when the hook's work does not
	// depend on what other changes' hooks do (recording a run's files; a
	// workflow step's end that creates no next step). A store may ignore
	// it.
	LateHook bool
	// NoResult makes Apply return a nil task on success, and give its Hook
	// none, sparing the store reading the row back. The engine sets it on
	// the outcome of every run.
	NoResult bool
}

// ClaimParams says what ClaimTasks may take.
type ClaimParams struct {
	// Owner is the claiming instance's id.
	Owner string
	// Now is the time against which tasks are due.
	Now time.Time
	// Lease is how long the claim holds the tasks, counted from the moment
	// it commits.
	Lease   time.Duration
	Batches []ClaimBatch
}

// ClaimBatch is a set of kinds and how many of their tasks to claim at most.
type ClaimBatch struct {
	Kinds []string
	Limit int
}

// Instance is a running engine, as recorded in the store.
type Instance struct {
	ID   string
	Host string
	PID  int
	// BootID identifies the boot of the host the process runs on, and
	// PIDNamespace the PID namespace it runs in, where the operating system
	// tells them ("" where it does not). A PID says whether another engine
	// lives only within the same boot and namespace.
	BootID       string
	PIDNamespace string
	Started      time.Time
	// Heartbeat is when the instance last recorded that it is alive.
	Heartbeat time.Time
}

// ListParams filters and pages List. The zero value lists the 20 newest tasks.
type ListParams struct {
	Status   Status // only tasks with this status
	Kind     string // only tasks of this kind
	ParentID string // only steps of this workflow task
	Ref      string
	Folder   string
	// After is a cursor: the tasks that follow the task with this id in the
	// list order. When set, Page is ignored.
	After string
	// Page is the 1-based page number. Defaults to 1.
	Page int
	// Limit is the page size, 1 to 100. Defaults to 20.
	Limit int
	// Oldest lists oldest first. Defaults to false: newest first.
	Oldest bool
	// CheapTotal asks for TaskPage.Total only if the store can count the
	// matches without reading them all, and -1 otherwise, so that a page
	// costs the same over millions of rows whatever the filters (the
	// SQLite store counts filters on status and kind alone from counters).
	// Defaults to false: Total is always counted.
	CheapTotal bool
}

// TaskPage is one page of a list.
type TaskPage struct {
	Tasks []*Task
	// Total is the number of tasks matching the filters, on every page;
	// -1 if ListParams.CheapTotal was set and counting would be slow.
	Total int
	// Next is the cursor for the next page (ListParams.After), or "" on the
	// last page.
	Next string
}

// Stats counts tasks.
type Stats struct {
	ByStatus map[Status]int
	ByKind   map[string]map[Status]int
	// OldestPending is the creation time of the oldest pending task, zero if
	// none is pending.
	OldestPending time.Time
	// OldestPendingByKind is OldestPending for each kind that has a
	// pending task.
	OldestPendingByKind map[string]time.Time
}
