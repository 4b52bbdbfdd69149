// Package spool is an embeddable media task engine: the Tasks API of a
// hosted media-processing service, in process. A program creates a task of
// a kind (video, image, audio, thumbnails, speech, … or a kind of its own)
// for a file or URL; the Engine stores it in SQLite, runs it through the
// kind's Handler under bounded concurrency, retries it, survives crashes,
// and reports status and progress as events.
//
// Quick start:
//
//	engine, err := spool.Open(ctx, spool.Config{Path: "spool.db"})
//	if err != nil { … }
//	defer engine.Close(ctx)
//
//	engine.Register("greet", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
//		job.Progress(50)
//		return job.SetOutput(map[string]string{"greeting": "hello"})
//	}))
//	engine.Start(ctx)
//
//	task, err := engine.Create(ctx, spool.Request{Kind: "greet"})
//	task, err = engine.Wait(ctx, task.ID) // task.Status == spool.StatusCompleted
//
// A Task marshals to the hosted API's task object; a Request unmarshals its
// create body. A kind's options are JSON data, checked at Create against
// the kind's spec if it has one (a value JSON cannot hold, such as NaN, is
// refused for every kind) and given their declared Go types wherever a task
// is read: a TypeInt option is int64, a TypeNumber float64, and any other
// integral number int64. Handlers read them with Job.Int, Job.Float,
// Job.String and the like. An engine that is never started is a pure
// client of a database that other processes run. Package spooltest runs
// handlers against a real in-memory engine in tests.
//
// # Statuses
//
//	pending     stored, runnable as soon as a worker is free
//	waiting     not runnable yet: run_at in the future, a retry backing off, a workflow parent
//	processing  a handler runs it
//	ready       a workflow parent with some usable step outputs
//	completed   done, with its output
//	failed      cannot succeed (Permanent error, bad input); never retried
//	error       the system failed after every attempt (errors, panics, timeouts)
//	cancelled   cancelled by Cancel
//
// Every status change and progress change writes an event (task.created,
// task.progress, task.<status>) in the same transaction; Config.OnEvent,
// Subscribe and Events read them in commit order. With
// Config.Webhooks.Secrets set, the events of tasks with a webhook_url are
// also POSTed there, signed per Standard Webhooks, retried and in order per
// task (see WebhookConfig and Engine.Deliveries); package webhook verifies
// them on the receiving side.
//
// # Workflows
//
// A task of kind workflow runs a tree of Steps on its input, and every
// engine runs it (no Register call). Steps run in parallel: the top-level
// steps start together when the workflow starts (at Create for a workflow
// on a stored file, which is stored waiting with them; after fetching its
// input for one on a url), and a step's Next steps
// start when it completes, on the file it produced (its output, when that
// is a file object) or else on its own input. (The hosted API's docs say
// both "in parallel" and "top to bottom"; spool runs in parallel, chained
// with next.) Each step is a task of its own whose ParentID is the
// workflow, retried and limited like any task; Task.Step says where it sits
// (workflow[0].next[1]). A step handler reads the outputs of the steps
// before it in its chain with Job.Upstream, by ref or by kind.
//
// A conditions step tests {prop, operator, value} conditions against its
// input file (kind, width, duration, metadata.<key>, …) and the outputs of
// earlier steps (<ref>.<field>, by ref or kind), and starts its next steps
// only if every one holds; values compare as numbers when both sides are
// numbers. Keys, refs and kinds may contain dots:
// metadata.com.apple.quicktime.make is the key com.apple.quicktime.make,
// and the longest ref or kind of an earlier step that prop starts with is
// taken, so mod.v2.detected is the field detected of the step whose ref is
// mod.v2. The workflow is waiting while its steps run, ready once one has
// completed, and then completed, or failed or error when a step did, with
// Results listing the steps that passed, failed and never started.
// Cancelling it cancels its steps. A step's next steps are created in the
// transaction that records its completion, so a crash loses none and runs
// none twice.
package spool
