package spool

import (
	"sync"
	"sync/atomic"
	"time"
)

// Observer is told of an engine's work as it happens, for metrics: package
// metrics turns it into Prometheus metrics. Every field may be nil.
//
// The functions are called on the engine's own goroutines, often
// concurrently, and the engine waits for them: they must be safe for
// concurrent use and quick (count, never block).
type Observer struct {
	// TasksCreated is called after Create or CreateMany stored tasks, once
	// per task, with its kind. Workflow steps, which the engine creates
	// itself, are not reported here; Stats counts them with every task.
	TasksCreated func(kind string)
	// HandlerDone is called when a handler of this engine has returned,
	// with the task's kind, the status its outcome moves the task to, and
	// how long the handler ran. The status is completed, failed or error;
	// waiting when the task will be tried again after its backoff, or for
	// a workflow, on its steps; pending when the engine is shutting down.
	// It is not called for a run whose task was cancelled or taken over
	// meanwhile, which records no outcome.
	HandlerDone func(kind string, to Status, took time.Duration)
	// TaskCancelled is called after Cancel cancelled a task, with its kind.
	TaskCancelled func(kind string)
	// Committed is called after each transaction of the default SQLite
	// store's writer, with how many writes it carried and how long it
	// took, waiting for another process's lock included.
	Committed func(writes int, took time.Duration)
	// WebhookAttempted is called after each webhook attempt with the state
	// it left its delivery in (delivered; pending when it will be tried
	// again; failed; disabled), and how long the attempt took.
	WebhookAttempted func(state DeliveryState, took time.Duration)
}

// observers holds an engine's Observers. The engine reads it on hot paths,
// so reading is one atomic load, and nothing when there are none.
type observers struct {
	mu   sync.Mutex // serializes add
	list atomic.Pointer[[]*Observer]
}

// add appends o; the list is copied, never changed in place, so that a
// reader holding the old one is safe.
func (os *observers) add(o *Observer) {
	os.mu.Lock()
	defer os.mu.Unlock()
	var next []*Observer
	if cur := os.list.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, o)
	os.list.Store(&next)
}

// each calls f for every observer, if there are any.
func (os *observers) each(f func(*Observer)) {
	if cur := os.list.Load(); cur != nil {
		for _, o := range *cur {
			f(o)
		}
	}
}

// any reports whether there are observers: the callers that would
// measure a time ask first, to spend nothing on it otherwise.
func (os *observers) any() bool { return os.list.Load() != nil }

// Observe adds o to the engine's observers. It may be called at any time,
// before or after Start; an observer cannot be removed. A nil o is
// ignored.
func (e *Engine) Observe(o *Observer) {
	if o != nil {
		e.obs.add(o)
	}
}

// observeCreated reports tasks that Create or CreateMany stored.
func (e *Engine) observeCreated(ts []*Task) {
	e.obs.each(func(o *Observer) {
		if o.TasksCreated != nil {
			for _, t := range ts {
				o.TasksCreated(t.Kind)
			}
		}
	})
}

// observeRun reports a handler's outcome.
func (e *Engine) observeRun(kind string, to Status, took time.Duration) {
	e.obs.each(func(o *Observer) {
		if o.HandlerDone != nil {
			o.HandlerDone(kind, to, took)
		}
	})
}

// observeCommit reports a transaction of the SQLite store's writer.
func (e *Engine) observeCommit(writes int, took time.Duration) {
	e.obs.each(func(o *Observer) {
		if o.Committed != nil {
			o.Committed(writes, took)
		}
	})
}

// observeDelivery reports a webhook attempt.
func (e *Engine) observeDelivery(state DeliveryState, took time.Duration) {
	e.obs.each(func(o *Observer) {
		if o.WebhookAttempted != nil {
			o.WebhookAttempted(state, took)
		}
	})
}
