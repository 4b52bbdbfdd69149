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
package spool
