package ui

import (
	"bytes"
	"crypto/rand"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
	"github.com/spoolrun/spool/internal/serve"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures the handler NewHandler returns. A nil *Options is
// the zero value.
type Options struct {
	// Tokens are the API tokens a user may log in with. The session
	// cookie the login sets carries the token's name, never its secret.
	// Defaults to none, which lets nobody in unless AllowNoAuth is set.
	Tokens []api.Token
	// AllowNoAuth serves the dashboard without a login, as the user
	// "anonymous". It works only on a loopback listener: a request that
	// arrived on any other local address, or whose Host is not localhost
	// or a loopback address (DNS rebinding), is refused with 403. Actions
	// still need the CSRF token. Defaults to false.
	AllowNoAuth bool
	// Prefix is the path the dashboard is mounted at, without a trailing
	// slash. The handler serves the paths under it itself, so mount it
	// without http.StripPrefix: mux.Handle("/ui/", ui.NewHandler(e, nil)).
	// Defaults to "/ui".
	Prefix string
	// SessionTTL is how long a login lasts. Defaults to 12 hours.
	SessionTTL time.Duration
	// MaxUploadSize is the largest file the create form accepts, in
	// bytes. Defaults to 1 GiB.
	MaxUploadSize int64
	// Logger receives errors the pages could not show. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Heartbeat is how often the live stream writes a comment to an idle
	// connection, so that proxies keep it open. Defaults to 15 seconds.
	Heartbeat time.Duration
}

// uploadTime is how long the create form's upload may take to arrive
// (serve.File gives a file's bytes as long to be sent).
const uploadTime = 30 * time.Minute

type handler struct {
	e         *spool.Engine
	mux       *http.ServeMux
	log       *slog.Logger
	tokens    serve.Tokens
	noAuth    bool
	prefix    string
	ttl       time.Duration
	maxUpload int64
	heartbeat time.Duration
	key       []byte // signs session cookies and CSRF tokens
	tmpl      map[string]*template.Template
	static    http.Handler
	cop       *http.CrossOriginProtection
	rate      *throughput
	revoked   revoked // sessions logged out before they expired
}

// NewHandler returns an http.Handler serving e's dashboard under
// opts.Prefix (see Options). opts may be nil. The handler is safe for
// concurrent use. It follows e's events, to count the tasks finished per
// minute, until e closes.
func NewHandler(e *spool.Engine, opts *Options) http.Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	h := &handler{e: e, log: o.Logger, noAuth: o.AllowNoAuth, prefix: strings.TrimSuffix(o.Prefix, "/"),
		ttl: o.SessionTTL, maxUpload: o.MaxUploadSize, heartbeat: o.Heartbeat}
	if h.log == nil {
		h.log = slog.Default()
	}
	if o.Prefix == "" {
		h.prefix = "/ui"
	}
	if h.ttl <= 0 {
		h.ttl = 12 * time.Hour
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
	h.key = make([]byte, 32)
	_, _ = rand.Read(h.key)
	h.tmpl = parseTemplates(h.prefix)
	sub, _ := fs.Sub(staticFS, "static")
	h.static = http.StripPrefix(h.prefix+"/static/", http.FileServerFS(sub))
	h.cop = http.NewCrossOriginProtection()
	h.rate = newThroughput(e)
	if h.noAuth {
		h.log.Warn("ui: AUTHENTICATION IS OFF: anyone who reaches this loopback listener can operate the engine")
	}

	p := h.prefix
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p+"/{$}", h.overview)
	mux.HandleFunc("GET "+p+"/login", h.loginPage)
	mux.HandleFunc("POST "+p+"/login", h.login)
	mux.HandleFunc("POST "+p+"/logout", h.logout)
	mux.HandleFunc("GET "+p+"/tasks", h.listPage)
	mux.HandleFunc("GET "+p+"/tasks/{id}", h.taskPage)
	mux.HandleFunc("GET "+p+"/tasks/{id}/row", h.taskRow)
	mux.HandleFunc("POST "+p+"/tasks/{id}/cancel", h.cancel)
	mux.HandleFunc("POST "+p+"/tasks/{id}/retry", h.retry)
	mux.HandleFunc("POST "+p+"/tasks/{id}/delete", h.delete)
	mux.HandleFunc("GET "+p+"/new", h.newPage)
	mux.HandleFunc("POST "+p+"/tasks", h.create)
	mux.HandleFunc("GET "+p+"/files/{id}/content", h.fileContent)
	mux.HandleFunc("GET "+p+"/events", h.events)
	mux.Handle("GET "+p+"/static/", h.static)
	mux.HandleFunc(p+"/", h.notFound)
	h.mux = mux
	return h
}

// ServeHTTP sets the headers every page shares, checks the session and,
// for POSTs, the request's origin and CSRF token, and routes the request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	if h.noAuth && (!loopback(r) || !serve.LoopbackHost(r.Host)) {
		http.Error(w, "this dashboard runs without authentication and answers on a loopback address only", http.StatusForbidden)
		return
	}
	if r.URL.Path == h.prefix {
		http.Redirect(w, r, h.prefix+"/", http.StatusSeeOther)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := h.cop.Check(r); err != nil {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
	}
	public := strings.HasPrefix(r.URL.Path, h.prefix+"/static/") || r.URL.Path == h.prefix+"/login"
	if !public {
		s, ok := h.session(r)
		if !ok {
			h.needLogin(w, r)
			return
		}
		if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
			// An upload may take longer than a server's ReadTimeout
			// (api.NewServer's is a minute), meant for small bodies.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(uploadTime))
		}
		if r.Method == http.MethodPost {
			ok, err := h.checkCSRF(r, s)
			if err != nil {
				http.Error(w, "the form could not be read: "+err.Error(), http.StatusBadRequest)
				return
			}
			if !ok {
				// A parsed upload's temporary files are otherwise the
				// route's to remove.
				if r.MultipartForm != nil {
					_ = r.MultipartForm.RemoveAll()
				}
				http.Error(w, "the form's CSRF token is missing or stale: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		r = r.WithContext(withSession(r.Context(), s))
	}
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.mux.ServeHTTP(w, r)
}

// loopback reports whether r arrived on a loopback address of this
// machine. A test server's requests carry no local address: they count.
func loopback(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// needLogin redirects a page to the login form, and refuses what a
// redirect would not help (actions, streams, files).
func (h *handler) needLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" &&
		!strings.HasPrefix(r.URL.Path, h.prefix+"/files/") && !strings.HasSuffix(r.URL.Path, "/row") {
		http.Redirect(w, r, h.prefix+"/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	http.Error(w, "log in first", http.StatusUnauthorized)
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, http.StatusNotFound, "No page here: "+r.URL.Path)
}

// render executes the named page into a buffer first, so that a template
// error becomes a 500 rather than half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data map[string]any) {
	t, ok := h.tmpl[name]
	if !ok {
		h.errorPage(w, r, http.StatusInternalServerError, "no template "+name)
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	data["Prefix"] = h.prefix
	if s, ok := sessionFrom(r.Context()); ok {
		data["User"] = s.user
		data["CSRF"] = h.csrfToken(s)
		data["NoAuth"] = h.noAuth
	}
	var buf bytes.Buffer
	entry := "page"
	if e, ok := data["Entry"].(string); ok {
		entry = e
	}
	if err := t.ExecuteTemplate(&buf, entry, data); err != nil {
		h.log.ErrorContext(r.Context(), "ui: render", "template", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage shows msg in the layout, or as text to a logged-out user.
func (h *handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if _, ok := sessionFrom(r.Context()); !ok {
		http.Error(w, msg, status)
		return
	}
	h.render(w, r, status, "error", map[string]any{"Title": http.StatusText(status), "Message": msg})
}

// fail shows err: a missing task as 404, an invalid request or transition
// as 400 or 409 with its text, anything else as a 500 that is logged and
// shows no details.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *spool.ValidationError
	switch {
	case errors.Is(err, spool.ErrNotFound):
		h.errorPage(w, r, http.StatusNotFound, "Not found.")
	case errors.As(err, &ve):
		h.errorPage(w, r, http.StatusBadRequest, ve.Error())
	case errors.Is(err, spool.ErrInvalidTransition):
		h.errorPage(w, r, http.StatusConflict, err.Error())
	default:
		h.log.ErrorContext(r.Context(), "ui: request failed", "path", r.URL.Path, "err", err)
		h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong; the server log has the details.")
	}
}
