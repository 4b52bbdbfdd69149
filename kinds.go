package spool

import (
	"context"
	"slices"
)

// Checker is implemented by handlers that depend on something outside the
// program (ffmpeg, a model provider). Check says why the handler cannot run
// on this machine, or returns nil.
type Checker interface {
	Check(ctx context.Context) error
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

// checkAvailable refuses, on a started engine, a kind it cannot run, unless
// Config.AcceptUnavailableKinds. The reasons are worked out once, at Start.
func (e *Engine) checkAvailable(kind string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.cfg.AcceptUnavailableKinds {
		return nil
	}
	if reason, ok := e.unavailable[kind]; ok {
		return &ValidationError{Field: "kind", Reason: "kind " + kind + " cannot run here: " + reason +
			" (Config.AcceptUnavailableKinds queues it for another process)", Err: ErrKindUnavailable}
	}
	return nil
}
