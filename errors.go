package spool

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Match them with errors.Is; the engine wraps them with
// context ("get task: spool: not found").
var (
	// ErrNotFound is returned when a task, file or event does not exist.
	ErrNotFound = errors.New("spool: not found")
	// ErrInvalidRequest is matched by every *ValidationError.
	ErrInvalidRequest = errors.New("spool: invalid request")
	// ErrInvalidTransition is returned when a status change is not allowed
	// from the task's current status, for example cancelling a completed task.
	ErrInvalidTransition = errors.New("spool: invalid status transition")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("spool: engine closed")
	// ErrSchemaTooNew is returned by Open when the database was migrated by a
	// newer version of spool than the running one.
	ErrSchemaTooNew = errors.New("spool: database schema is newer than this version of spool")
	// ErrKindUnavailable is returned by Create when a started engine cannot
	// run the task's kind (and Config.AcceptUnavailableKinds is false).
	ErrKindUnavailable = errors.New("spool: kind unavailable")
	// ErrDuplicateKind is returned by TryRegister for a kind that already has
	// a handler.
	ErrDuplicateKind = errors.New("spool: kind already registered")
	// ErrNotStarted is returned by calls that need a running engine.
	ErrNotStarted = errors.New("spool: engine not started")
	// ErrIdempotencyMismatch is returned by Create and CreateMany for a
	// request whose IdempotencyKey was first used for a different request
	// (another kind, url, file_id, option value, workflow step, webhook_url
	// or run_at). It comes as a *ValidationError naming the first field that
	// differs (idempotency_key when a Store refused the request without
	// saying which); nothing is stored.
	ErrIdempotencyMismatch = errors.New("spool: idempotency key used for a different request")
	// ErrFileInUse is returned by DeleteFile for a file that a task not yet
	// finished takes as input: deleted, it would fail that task. Cancel the
	// task, or wait for it, first.
	ErrFileInUse = errors.New("spool: file is the input of an unfinished task")
)

// ValidationError reports a request rejected before anything was stored.
// Field names the offending field as it appears in the JSON request
// ("kind", "url", "options.width", "requests[3].file_id").
type ValidationError struct {
	Field  string
	Reason string
	// Err, if set, is a sentinel the error also matches, such as
	// ErrKindUnavailable.
	Err error
}

// Error returns "spool: invalid FIELD: REASON".
func (e *ValidationError) Error() string {
	return fmt.Sprintf("spool: invalid %s: %s", e.Field, e.Reason)
}

// Is makes every ValidationError match ErrInvalidRequest.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidRequest }

// Unwrap returns Err.
func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// permanentError marks a handler error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that the task ends as failed at once instead of
// being retried. Use it for bad input and unsupported formats: errors that
// another attempt would repeat. Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was made by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryAfterError asks for the next attempt no sooner than after.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter wraps err, a handler error that another attempt may fix, so
// that the next attempt waits at least d: the engine waits the longer of d
// and Config.Backoff's delay. Use it when a service says when to come
// back, as an HTTP 429 or 503 answer's Retry-After does. It does not make
// an attempt more likely: a task on its last attempt still ends in error.
// RetryAfter(nil, d) returns nil; d <= 0 leaves err as it is.
func RetryAfter(err error, d time.Duration) error {
	if err == nil || d <= 0 {
		return err
	}
	return &retryAfterError{err: err, after: d}
}

// retryAfter returns the longest delay that err, or an error it wraps,
// asks for with RetryAfter; 0 if none.
func retryAfter(err error) time.Duration {
	var d time.Duration
	for err != nil {
		if r, ok := err.(*retryAfterError); ok {
			d = max(d, r.after)
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				d = max(d, retryAfter(e))
			}
			return d
		default:
			return d
		}
	}
	return d
}
