package spool

import (
	"context"
	"errors"
	"slices"
)

// Checker is implemented by handlers that depend on something outside the
// program (ffmpeg, a model provider). Check says why the handler cannot run
// on this machine, or returns nil.
type Checker interface {
	Check(ctx context.Context) error
}

// TaskChecker is implemented by handlers that can run some tasks of their
// kind on this machine but not others: the image kind without ffmpeg makes
// PNG, JPEG and GIF files but not WebP or AVIF ones. CheckTask says why the
// handler cannot run t, whose options are validated and in their declared
// types and whose file_id input is resolved, or returns nil; a *ValidationError names the field
// to blame. A started engine refuses such a task at Create, as it refuses
// a kind whose Checker fails, unless Config.AcceptUnavailableKinds. It is
// called on every Create of the kind, so it should be cheap.
type TaskChecker interface {
	CheckTask(ctx context.Context, t *Task) error
}

// KindInfo says whether an engine can run a kind, and why not.
type KindInfo struct {
	Kind      string `json:"kind"`
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	// Spec is the spec the engine validates the kind's requests with,
	// shared with it: read it, do not modify it.
	Spec *KindSpec `json:"spec,omitempty"`
}

// Kinds reports, for every built-in kind and every registered one, whether
// this engine can run it and, if not, why: no handler registered, or the
// handler's Check failed ("ffmpeg not found in PATH: install ffmpeg").
func (e *Engine) Kinds(ctx context.Context) []KindInfo {
	e.mu.Lock()
	handlers := make(map[string]Handler, len(e.handlers))
	for k, h := range e.handlers {
		handlers[k] = h
	}
	e.mu.Unlock()
	kinds := BuiltinKinds()
	for k := range handlers {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds[len(BuiltinKinds()):])
	out := make([]KindInfo, 0, len(kinds))
	for _, k := range kinds {
		info := KindInfo{Kind: k, Available: true}
		info.Spec, _ = e.spec(k)
		// Checks run outside the lock: they may start a program.
		if reason := unavailable(ctx, k, handlers[k]); reason != "" {
			info.Available, info.Reason = false, reason
		}
		out = append(out, info)
	}
	return out
}

// unavailable says why h cannot run kind, or "".
func unavailable(ctx context.Context, kind string, h Handler) string {
	if h == nil {
		return "no handler registered for kind " + kind + " in this engine"
	}
	if c, ok := h.(Checker); ok {
		if err := c.Check(ctx); err != nil {
			return err.Error()
		}
	}
	return ""
}

// unavailableHint ends the reason a kind or task is refused with. Users of
// spool serve and its API cannot set a Config field; serve has no flag for
// it: the tasks it accepted and cannot run would wait for another process,
// and serve is usually the only one.
const unavailableHint = " (Config.AcceptUnavailableKinds, in Go, queues it for another process; spool serve has no such flag)"

// checkAvailable refuses, on a started engine, a kind it cannot run, unless
// Config.AcceptUnavailableKinds. The reasons are worked out once, at Start.
// It returns the kind's TaskChecker when its tasks are to be checked too
// (checkTask), so that Create takes the engine's lock once.
func (e *Engine) checkAvailable(kind string) (TaskChecker, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.cfg.AcceptUnavailableKinds {
		return nil, nil
	}
	if reason, ok := e.unavailable[kind]; ok {
		return nil, &ValidationError{Field: "kind", Reason: "kind " + kind + " cannot run here: " + reason + unavailableHint,
			Err: ErrKindUnavailable}
	}
	c, _ := e.handlers[kind].(TaskChecker)
	return c, nil
}

// checkTask refuses a task that c, its handler, says it cannot run here.
// The error matches ErrKindUnavailable.
func (e *Engine) checkTask(ctx context.Context, c TaskChecker, t *Task) error {
	err := c.CheckTask(ctx, e.typed(t)) // options as handlers read them
	if err == nil {
		return nil
	}
	ve := &ValidationError{Field: "kind", Reason: err.Error()}
	if v, ok := errors.AsType[*ValidationError](err); ok {
		ve.Field, ve.Reason = v.Field, v.Reason
	}
	ve.Reason += unavailableHint
	ve.Err = ErrKindUnavailable
	return ve
}
