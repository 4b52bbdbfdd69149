package api

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/internal/serve"
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
	// listener on a loopback address only: a request without a token
	// must name localhost or a loopback address as its Host, and a
	// browser must not have sent it from a page of another origin.
	// Defaults to false.
	AllowNoAuth bool
	// MaxUploadSize is the largest file POST /files accepts, in bytes.
	// Defaults to 1 GiB.
	MaxUploadSize int64
	// Logger receives one line per request. Defaults to slog.Default().
	Logger *slog.Logger

	// BaseURL is the absolute URL the API is reached at, such as
	// "https://media.example.com/api", used for the Location header, the
	// Link header and every file's url. Set it when the handler is mounted
	// under a path prefix or behind a proxy. Defaults to http:// (https://
	// on TLS connections) and the request's Host.
	BaseURL string
	// Heartbeat is how often GET /events writes a comment to an idle
	// stream, so that proxies keep it open. Defaults to 15 seconds.
	Heartbeat time.Duration
	// Metrics, when set, is served at GET /metrics behind the same tokens,
	// such as metrics.Handler(e) for Prometheus (which sends a bearer
	// token with its scrapes). Defaults to nil: no /metrics route.
	Metrics http.Handler
}

// version is the hosted API's version this package serves, the only
// value of Accept-Version beside "latest" (and no header at all).
const version = "2025-08-20"

// maxJSONBody bounds a JSON request body.
const maxJSONBody = 1 << 20

type handler struct {
	e         *spool.Engine
	mux       *http.ServeMux
	log       *slog.Logger
	tokens    serve.Tokens
	noAuth    bool
	maxUpload int64
	base      string
	heartbeat time.Duration
	reqPrefix string
	reqSeq    atomic.Uint64
	cop       *http.CrossOriginProtection // for requests without a token
}

// NewHandler returns an http.Handler that serves e's tasks and files in
// the wire format of the hosted Tasks API (see the package doc for the
// routes). opts may be nil. The handler is safe for concurrent use.
func NewHandler(e *spool.Engine, opts *Options) http.Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	h := &handler{e: e, log: o.Logger, noAuth: o.AllowNoAuth, maxUpload: o.MaxUploadSize,
		base: strings.TrimSuffix(o.BaseURL, "/"), heartbeat: o.Heartbeat, cop: http.NewCrossOriginProtection()}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.maxUpload <= 0 {
		h.maxUpload = serve.DefaultMaxUpload
	}
	if h.heartbeat <= 0 {
		h.heartbeat = serve.DefaultHeartbeat
	}
	for _, t := range o.Tokens {
		h.tokens.Add(t.Name, t.Secret)
	}
	var p [4]byte
	_, _ = rand.Read(p[:])
	h.reqPrefix = "req_" + hex.EncodeToString(p[:]) + "_"
	switch {
	case h.noAuth:
		h.log.Warn("api: AUTHENTICATION IS OFF: anyone who reaches this listener can create, read and delete tasks and files; serve it on a loopback address only")
	case h.tokens.Len() == 0:
		h.log.Warn("api: no tokens configured and AllowNoAuth is false: every request will be refused with 401")
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /tasks", h.createTask)
	mux.HandleFunc("GET /tasks", h.listTasks)
	mux.HandleFunc("GET /tasks/{id}", h.getTask)
	mux.HandleFunc("DELETE /tasks/{id}", h.deleteTask)
	mux.HandleFunc("POST /tasks/{id}/cancel", h.cancelTask)
	mux.HandleFunc("GET /tasks-config", h.tasksConfig)
	mux.HandleFunc("POST /files", h.uploadFile)
	mux.HandleFunc("GET /files", h.listFiles)
	mux.HandleFunc("GET /files/{id}", h.getFile)
	mux.HandleFunc("GET /files/{id}/content", h.fileContent)
	mux.HandleFunc("DELETE /files/{id}", h.deleteFile)
	mux.HandleFunc("GET /events", h.events)
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	mux.HandleFunc("/", h.noRoute)
	h.mux = mux
	return h
}

// reqState is what the middleware learnt about a request. It rides on
// the response writer, which the mux hands to the route as it is, rather
// than in a copy of the request with a new context.
type reqState struct {
	id   string // request id
	user string // the token's name
}

func state(w http.ResponseWriter) *reqState {
	if rw, ok := w.(*recorder); ok {
		return &rw.st
	}
	return &reqState{}
}

// ServeHTTP logs the request, checks its token and version, and routes it.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &recorder{ResponseWriter: w, st: reqState{id: h.reqPrefix + strconv.FormatUint(h.reqSeq.Add(1), 10)}}
	st := &rw.st
	w.Header().Set("X-Request-Id", st.id)
	defer func() {
		status := rw.status
		if status == 0 {
			status = http.StatusOK
		}
		// The path without the query: a query could carry anything.
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "api: request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Duration("duration", time.Since(start)),
			slog.String("request_id", st.id), slog.String("user", st.user))
	}()
	if !h.authorize(rw, r, st) {
		return
	}
	if v := r.Header.Get("Accept-Version"); v != "" && v != version && v != "latest" {
		h.fail(rw, r, newErr(http.StatusBadRequest, "request_invalid", "Accept-Version", "unsupported version "+strconv.Quote(v)+": use "+version+" or latest, or leave the header out"))
		return
	}
	h.mux.ServeHTTP(rw, r)
}

// authorize checks the bearer token, in constant time (serve.Tokens).
func (h *handler) authorize(w http.ResponseWriter, r *http.Request, st *reqState) bool {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		missing := func(msg string) bool {
			// A 401 names the scheme it wants (RFC 9110, section 11.6.1).
			w.Header().Set("WWW-Authenticate", "Bearer")
			h.fail(w, r, newErr(http.StatusUnauthorized, "token_missing", "", msg))
			return false
		}
		if !h.noAuth {
			return missing("send the header Authorization: Bearer <token>")
		}
		// Without a token, a browser's page of another site could send
		// a POST here (a body with no Content-Type needs no preflight),
		// or reach the listener under its own name (DNS rebinding).
		if !serve.LoopbackHost(r.Host) || h.cop.Check(r) != nil {
			return missing("without a token, this API answers only requests to localhost or a loopback address that no page of another origin sent: send the header Authorization: Bearer <token>")
		}
		return true
	}
	scheme, secret, ok := strings.Cut(auth, " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		if name, ok := h.tokens.Name(secret); ok {
			st.user = name
			return true
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	h.fail(w, r, newErr(http.StatusUnauthorized, "token_invalid", "", "the bearer token is not valid"))
	return false
}

// noRoute answers requests no route matches: 405 with Allow when the path
// exists for other methods, else 404, both as JSON errors.
func (h *handler) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := h.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.fail(w, r, newErr(http.StatusMethodNotAllowed, "method_not_allowed", "", r.Method+" is not allowed on "+r.URL.Path+": use "+strings.Join(allow, ", ")))
		return
	}
	h.fail(w, r, newErr(http.StatusNotFound, "not_found", "", "no route "+r.Method+" "+r.URL.Path))
}

// baseURL returns the absolute URL the API is reached at, without a
// trailing slash.
func (h *handler) baseURL(r *http.Request) string {
	if h.base != "" {
		return h.base
	}
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// recorder remembers the status written, for the log line.
type recorder struct {
	http.ResponseWriter
	status int
	st     reqState
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the connection's own ReadFrom (sendfile for file
// contents) reachable through the wrapper.
func (w *recorder) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return io.Copy(w.ResponseWriter, src)
}

// Unwrap lets http.ResponseController reach the connection (SSE flushes
// and lifts the write deadline through it).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// NewServer returns an http.Server for h on addr with timeouts that keep
// slow or idle clients from holding connections: 10 s to read a
// request's headers, 1 minute to read a body (POST /files gives an
// upload 30), 1 minute to write a response (GET /files/{id}/content gives
// a file's bytes 30, and GET /events lifts it for its stream), 2 minutes
// idle between keep-alive requests, and 64 KiB of headers.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
