package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
	"github.com/spoolrun/spool/kinds"
	"github.com/spoolrun/spool/metrics"
	"github.com/spoolrun/spool/ui"
	"github.com/spoolrun/spool/webhook"
)

const serveUsage = `Usage: spool serve [flags]

Serves the hosted Tasks API (POST /tasks, GET /tasks, GET /tasks/{id}, files,
events) from an engine on one SQLite database, running every built-in kind
this machine can run. It logs which kinds it can run and why not the others.
The dashboard is at /ui/ (log in with a token), Prometheus metrics at
/metrics (with a token, as for the API).

Auth: every request needs "Authorization: Bearer SECRET" with a configured
token. --token (or SPOOL_TOKEN) is one secret, named "default"; a tokens
file has one token per line, "name:secret" (the name is what tasks record
as created_by; blank lines and lines starting with # are skipped). Both may
be given. --no-auth serves without tokens, and only on a loopback address
(to requests that name localhost or a loopback address as their host and,
from a browser, come from a page of that origin).

Webhooks: a task's webhook_url gets its status changes, signed per the
Standard Webhooks specification, once --webhook-secret (or
SPOOL_WEBHOOK_SECRET) gives the whsec_ secret that signs them (several,
space-separated, all sign: for rotating one). Without it webhook_url is
stored and nothing is sent. Receivers on loopback or private addresses
need --allow-private-networks.

Shutdown: on SIGINT or SIGTERM it stops accepting connections, lets requests
in flight finish (up to 5s, then closes the rest, event streams included),
lets running tasks finish until --shutdown-timeout, then stops them: those
go back to pending, without using up an attempt, and run again at the next
start. A second signal exits at once.

Timeouts (api.NewServer's): a client has 10s to send a request's headers,
1 minute to send its body (30 minutes for an upload) and to read the
answer (30 minutes for a file's bytes; the event stream, GET /events, is
exempt), and a connection stays
idle at most 2 minutes. No timeout cuts a running task: tasks run in the
engine, apart from requests. Bodies are bounded by size too: 1 MiB of JSON,
--max-upload-size for uploads.

Example:
  SPOOL_TOKEN=secret spool serve --db /var/lib/spool/spool.db
  curl -H "Authorization: Bearer secret" http://127.0.0.1:8080/tasks
`

// httpDrainTimeout bounds how long shutdown waits for requests in flight.
const httpDrainTimeout = 5 * time.Second

// serve is "spool serve".
func (c *cli) serve(ctx context.Context, args []string) error {
	fs := c.newFlagSet("serve", serveUsage)
	db := fs.String("db", c.envOr("SPOOL_DB", "spool.db"), "the SQLite database file (env SPOOL_DB)")
	data := fs.String("data", c.getenv("SPOOL_DATA"), "the directory of the files' bytes (env SPOOL_DATA); defaults to DB.files")
	addr := fs.String("addr", c.envOr("SPOOL_ADDR", "127.0.0.1:8080"), "the address to listen on (env SPOOL_ADDR); port 0 picks a free one")
	token := fs.String("token", "", "a bearer token's secret, named \"default\" (env SPOOL_TOKEN, which other users cannot see in ps)")
	tokensFile := fs.String("tokens-file", "", "a file of tokens, one name:secret per line")
	noAuth := fs.Bool("no-auth", false, "serve without tokens (loopback addresses only)")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "how long running tasks may take to finish on shutdown")
	concurrency := fs.Int("concurrency", 0, "the most tasks running at once; defaults to the number of CPUs")
	private := fs.Bool("allow-private-networks", false, "let url inputs and http tasks reach loopback and private addresses")
	maxUpload := fs.Int64("max-upload-size", 0, "the largest upload in bytes; defaults to 1 GiB")
	baseURL := fs.String("base-url", c.getenv("SPOOL_BASE_URL"), "the URL clients reach the API at, behind a proxy or under a path (env SPOOL_BASE_URL); defaults to the request's host")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	webhookSecret := fs.String("webhook-secret", "", "the whsec_ secret that signs webhooks, several space-separated (env SPOOL_WEBHOOK_SECRET); without one no webhook is sent")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	var h slog.Handler = slog.NewTextHandler(c.stderr, nil)
	if *logJSON {
		h = slog.NewJSONHandler(c.stderr, nil)
	}
	log := slog.New(h)

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	secret := *token
	if !set["token"] {
		secret = c.getenv("SPOOL_TOKEN")
	}
	tokens, err := loadTokens(secret, *tokensFile)
	if err != nil {
		return err
	}
	if err := checkAuth(*addr, len(tokens), *noAuth); err != nil {
		return err
	}
	if st, err := os.Stat(*tokensFile); *tokensFile != "" && err == nil && st.Mode().Perm()&0o044 != 0 {
		log.Warn("the tokens file is readable by other users: chmod 600 it", "file", *tokensFile,
			"mode", st.Mode().Perm().String())
	}

	hookSecrets := strings.Fields(*webhookSecret)
	if !set["webhook-secret"] {
		hookSecrets = strings.Fields(c.getenv("SPOOL_WEBHOOK_SECRET"))
	}
	if _, err := webhook.ParseSecrets(hookSecrets); err != nil {
		return usagef("--webhook-secret: %v", err) // the error never shows the secret
	}
	// Listening comes first: a port in use or a bad address must not leave
	// a new database behind.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close() // Serve owns it once it runs; a second Close is harmless
	if a, ok := ln.Addr().(*net.TCPAddr); *noAuth && (!ok || !a.IP.IsLoopback()) {
		return usagef("--no-auth on %s: only loopback addresses may serve without tokens", ln.Addr())
	}
	e, err := spool.Open(ctx, spool.Config{Path: *db, DataDir: *data, Concurrency: *concurrency,
		AllowPrivateNetworks: *private, Logger: log, Webhooks: spool.WebhookConfig{Secrets: hookSecrets}})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			e.Close(context.WithoutCancel(ctx))
		}
	}()
	if err := kinds.Register(e, &kinds.Config{Getenv: c.getenv}); err != nil {
		return err
	}
	var runs []string
	for _, k := range e.Kinds(ctx) {
		if k.Available {
			runs = append(runs, k.Kind)
		} else {
			log.Warn("kind unavailable: its tasks are refused", "kind", k.Kind, "reason", k.Reason)
		}
	}
	log.Info("kinds available", "kinds", strings.Join(runs, ","))
	if err := e.Start(ctx); err != nil {
		return err
	}

	if len(hookSecrets) == 0 {
		log.Info("webhooks off: tasks' webhook_url is stored, nothing is sent; --webhook-secret turns them on")
	}
	if *noAuth {
		log.Warn("NO AUTH: anyone who can reach this address can create, read, cancel and delete tasks and files",
			"addr", ln.Addr().String())
	}
	// Signals are caught from before the serving line: a process manager
	// (or a test) that stops the server as soon as it answers must get a
	// graceful shutdown, not the signal's default exit.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	// NewServer sets the timeouts that keep slow clients from holding
	// connections.
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui.NewHandler(e, &ui.Options{Tokens: tokens, AllowNoAuth: *noAuth,
		MaxUploadSize: *maxUpload, Logger: log}))
	mux.Handle("/", api.NewHandler(e, &api.Options{Tokens: tokens,
		AllowNoAuth: *noAuth, MaxUploadSize: *maxUpload, BaseURL: *baseURL, Logger: log,
		Metrics: metrics.Handler(e)}))
	srv := api.NewServer(ln.Addr().String(), mux)
	srv.ErrorLog = slog.NewLogLogger(h, slog.LevelWarn)
	// Cancelled when the drain ends, so that event streams end.
	srv.BaseContext = func(net.Listener) context.Context { return baseCtx }
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "url", "http://"+ln.Addr().String(), "db", *db, "tokens", len(tokens))

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case s := <-sigs:
		log.Info("shutting down", "signal", s.String(), "timeout", shutdown.String())
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx).Error(), "timeout", shutdown.String())
	}
	go func() {
		s := <-sigs
		log.Error("second signal: exiting at once; running tasks come back at the next start", "signal", s.String())
		os.Exit(exitFailed)
	}()

	deadline := time.Now().Add(*shutdown)
	drain, cancel := context.WithTimeout(context.Background(), min(*shutdown, httpDrainTimeout))
	if err := srv.Shutdown(drain); err != nil {
		log.Warn("closing connections still open", "err", err)
		cancelBase()
		srv.Close()
	}
	cancel()
	closeCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	closed = true
	if err := e.Close(closeCtx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// loadTokens returns the token named "default" with secret, if any (a
// blank one is none: the handlers would drop it, and refuse everyone),
// and those of the tokens file, if any.
func loadTokens(secret, file string) ([]api.Token, error) {
	var tokens []api.Token
	if strings.TrimSpace(secret) != "" {
		tokens = append(tokens, api.Token{Name: "default", Secret: secret})
	}
	if file == "" {
		return tokens, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// The secret is never in an error: the line number says where.
		name, sec, ok := strings.Cut(line, ":")
		name, sec = strings.TrimSpace(name), strings.TrimSpace(sec)
		if !ok || name == "" || sec == "" {
			return nil, usagef("tokens file %s, line %d: want name:secret", file, n)
		}
		for _, t := range tokens {
			if t.Secret == sec {
				return nil, usagef("tokens file %s, line %d: the secret of %s is also %s's", file, n, name, t.Name)
			}
		}
		tokens = append(tokens, api.Token{Name: name, Secret: sec})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", file, err)
	}
	return tokens, nil
}

// checkAuth refuses to serve without tokens unless --no-auth, and
// --no-auth on an address that is not loopback.
func checkAuth(addr string, tokens int, noAuth bool) error {
	if !noAuth {
		if tokens == 0 {
			return &usageError{msg: "no token: every request needs one",
				hint: "Set --token or SPOOL_TOKEN, or --tokens-file; or --no-auth on a loopback address, for local use."}
		}
		return nil
	}
	if !isLoopback(addr) {
		return &usageError{msg: fmt.Sprintf("--no-auth on %s: only loopback addresses may serve without tokens", addr),
			hint: "Listen on 127.0.0.1 or [::1], or set --token or SPOOL_TOKEN."}
	}
	return nil
}

// isLoopback reports whether addr (host:port) listens on loopback only. An
// empty host listens on every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
