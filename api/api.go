// Package api serves an Engine's tasks and files over HTTP in the wire
// format of the hosted Tasks API.
package api

import (
	"log/slog"
	"net/http"

	"github.com/spoolrun/spool"
)

// Token is a bearer token that the API accepts, with the name that tasks
// and files created with it record as created_by.
type Token struct {
	Name   string // recorded as created_by; never the secret
	Secret string // the value after "Bearer "
}

// Options configures the handler NewHandler returns. A nil *Options is
// the zero value.
type Options struct {
	// Tokens are the bearer tokens accepted. Defaults to none, which
	// refuses every request unless AllowNoAuth is set.
	Tokens []Token
	// AllowNoAuth serves requests without a token. It is meant for a
	// listener on a loopback address only. Defaults to false.
	AllowNoAuth bool
	// MaxUploadSize is the largest file POST /files accepts, in bytes.
	// Defaults to 1 GiB.
	MaxUploadSize int64
	// Logger receives one line per request. Defaults to slog.Default().
	Logger *slog.Logger
}

// NewHandler returns an http.Handler that serves e's tasks and files.
// opts may be nil.
func NewHandler(e *spool.Engine, opts *Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not implemented yet", http.StatusNotImplemented)
	})
	return mux
}
