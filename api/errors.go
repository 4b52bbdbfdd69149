package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spoolrun/spool"
)

// Error is the body of every error response:
// {"error": {"kind": "...", "message": "...", "field": "..."}}.
type Error struct {
	// Kind is a stable, machine-readable name: request_invalid,
	// token_missing, token_invalid, task_not_found, file_not_found,
	// not_found, method_not_allowed, invalid_transition, file_in_use,
	// kind_unavailable, idempotency_mismatch, request_too_large, unsupported_media_type,
	// unavailable or internal_error.
	Kind string `json:"kind"`
	// Message says what went wrong, for people.
	Message string `json:"message"`
	// Field names the offending part of the request, as it appears in the
	// JSON body ("width", "workflow[0].kind") or as a header or query
	// parameter ("Accept-Version", "limit"); empty when no one part is.
	Field string `json:"field,omitempty"`
	// RequestID is the request's X-Request-Id, which the server's log
	// line for the request carries too.
	RequestID string `json:"request_id,omitempty"`
}

// apiError is an Error with its HTTP status.
type apiError struct {
	status int
	Error
}

// fail writes e as a JSON error response.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, e *apiError) {
	e.RequestID = w.Header().Get("X-Request-Id")
	b, _ := json.Marshal(struct {
		Error Error `json:"error"`
	}{e.Error})
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Del("Content-Length")
	hd.Del("ETag")
	w.WriteHeader(e.status)
	_, _ = w.Write(append(b, '\n'))
}

// failErr maps an engine error to its response. notFound is the kind for
// ErrNotFound: task_not_found or file_not_found.
func (h *handler) failErr(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	var ve *spool.ValidationError
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		h.fail(w, r, &apiError{status: http.StatusRequestEntityTooLarge, Error: Error{Kind: "request_too_large",
			Message: fmt.Sprintf("the body is larger than %d bytes", mb.Limit)}})
	case errors.As(err, &ve) && errors.Is(err, spool.ErrKindUnavailable):
		h.fail(w, r, &apiError{status: http.StatusUnprocessableEntity, Error: Error{Kind: "kind_unavailable",
			Field: ve.Field, Message: ve.Reason}})
	case errors.As(err, &ve) && errors.Is(err, spool.ErrIdempotencyMismatch):
		// The engine's message names the key as stored, which carries the
		// token's name (scopedKey); the client knows which key it sent.
		h.fail(w, r, &apiError{status: http.StatusUnprocessableEntity, Error: Error{Kind: "idempotency_mismatch",
			Field: ve.Field, Message: "this idempotency key was first used for a different request (" + ve.Field +
				" differs): send the same request again, or use a new key for a new request"}})
	case errors.As(err, &ve):
		h.fail(w, r, &apiError{status: http.StatusBadRequest, Error: Error{Kind: "request_invalid",
			Field: ve.Field, Message: ve.Reason}})
	case errors.Is(err, spool.ErrNotFound):
		what := strings.TrimSuffix(notFound, "_not_found")
		h.fail(w, r, &apiError{status: http.StatusNotFound, Error: Error{Kind: notFound,
			Message: "no " + what + " " + r.PathValue("id")}})
	case errors.Is(err, spool.ErrInvalidTransition):
		h.fail(w, r, &apiError{status: http.StatusConflict, Error: Error{Kind: "invalid_transition",
			Message: conflictMessage(r)}})
	case errors.Is(err, spool.ErrFileInUse):
		h.fail(w, r, &apiError{status: http.StatusConflict, Error: Error{Kind: "file_in_use",
			Message: "the file is the input of a task that has not finished: cancel the task, or wait for it, then delete the file"}})
	case errors.Is(err, spool.ErrClosed), errors.Is(err, spool.ErrNotStarted):
		h.fail(w, r, &apiError{status: http.StatusServiceUnavailable, Error: Error{Kind: "unavailable",
			Message: "the engine is shutting down or not started; retry later"}})
	case r.Context().Err() != nil:
		// The client went away; nobody reads this, but the log shows 499.
		h.fail(w, r, &apiError{status: 499, Error: Error{Kind: "client_closed", Message: "the client closed the request"}})
	default:
		id := w.Header().Get("X-Request-Id")
		h.log.ErrorContext(r.Context(), "api: internal error", "request_id", id, "method", r.Method,
			"path", r.URL.Path, "err", err)
		h.fail(w, r, &apiError{status: http.StatusInternalServerError, Error: Error{Kind: "internal_error",
			Message: "internal error; the server's log has its details under request id " + id}})
	}
}

func conflictMessage(r *http.Request) string {
	if r.Method == http.MethodDelete {
		return "task " + r.PathValue("id") + " has not finished (or a workflow step of it has not): cancel it first"
	}
	return "task " + r.PathValue("id") + " has already finished"
}

func newErr(status int, kind, field, msg string) *apiError {
	return &apiError{status: status, Error: Error{Kind: kind, Field: field, Message: msg}}
}

func badRequest(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Error: Error{Kind: "request_invalid", Field: field,
		Message: fmt.Sprintf(format, args...)}}
}

// jsonSyntax describes where a body stopped being JSON.
func jsonSyntax(body []byte, err error) *apiError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case len(strings.TrimSpace(string(body))) == 0:
		return badRequest("body", "is empty: send a JSON object")
	case errors.As(err, &se):
		line, col := 1, 1
		for _, c := range body[:max(0, min(int(se.Offset)-1, len(body)))] {
			if c == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		return badRequest("body", "is not valid JSON at line %d, column %d (byte %d): %v", line, col, se.Offset, se)
	case errors.As(err, &te):
		return badRequest("body", "must be a JSON object, not %s", te.Value)
	}
	return badRequest("body", "%v", err)
}
