// Package api serves an Engine's tasks and files over HTTP in the wire
// format of the hosted Tasks API (version 2025-08-20), so that a client
// written for the hosted service, pointed at this handler, works
// unchanged.
//
// # Quick start
//
//	engine, _ := spool.Open(ctx, spool.Config{Path: "spool.db"})
//	kinds.Register(engine, nil)
//	engine.Start(ctx)
//	h := api.NewHandler(engine, &api.Options{Tokens: []api.Token{{Name: "web", Secret: os.Getenv("SPOOL_TOKEN")}}})
//	mux.Handle("/", h) // or api.NewServer("127.0.0.1:8080", h).ListenAndServe()
//
//	curl -H "Authorization: Bearer $SPOOL_TOKEN" -H "Content-Type: application/json" \
//	     -d '{"url": "https://example.com/in.png", "kind": "image", "width": 320, "format": "png"}' \
//	     http://127.0.0.1:8080/tasks
//
// Mounted under a prefix (mux.Handle("/media/", http.StripPrefix("/media", h))),
// set Options.BaseURL so that the Location and Link headers and file urls
// carry the prefix.
//
// # Routes
//
//	POST   /tasks              create (the hosted create body; 201 + Location)
//	GET    /tasks              list: page, limit, after, status, kind, parent_id, ref, folder
//	GET    /tasks/{id}         one task
//	POST   /tasks/{id}/cancel  cancel a task that has not finished (409 otherwise)
//	DELETE /tasks/{id}         delete a finished task and its files (409 otherwise)
//	GET    /tasks-config       every kind, its options, and whether this engine runs it
//	POST   /files              upload: a raw body, or multipart with a part "file"
//	GET    /files              list: folder, ref, task_id, after, limit
//	GET    /files/{id}         one file record
//	GET    /files/{id}/content its bytes (Range, ETag, conditional requests)
//	DELETE /files/{id}         delete a file (409 while an unfinished task takes it as input)
//	GET    /events             Server-Sent Events: Last-Event-ID or after, task, kind
//	GET    /metrics            Options.Metrics, when set (such as metrics.Handler)
//
// Tasks are the task object of the hosted API. In every response, a file
// object's url (a task's input, its output, files nested in outputs such
// as a thumbnails track's sprite) is where this API serves the file's
// bytes, /files/{id}/content; the URL a url input was downloaded from is
// its "original".
//
// Create takes the kind options at the top level of the body, beside
// kind, url or file_id, filename, folder, ref, webhook_url and workflow;
// idempotency_key (or the Idempotency-Key header: a retried POST of the
// same request returns the first task, with Idempotent-Replayed: true, and
// a different request with a used key is a 422 idempotency_mismatch naming
// the first field that differs; a key is its token's own, so two tokens
// never share a task by picking the same key) and run_at (RFC 3339)
// are spool's additions. A field that is neither a request field nor an
// option the kind declares is a 400 naming it.
//
// Lists are bare JSON arrays, newest first, with a Link header (self,
// first, prev, next, last) and X-Total-Count. A page past the end is [].
// after=ID is a stable cursor: it lists the tasks after that one,
// whatever was created meanwhile, and its Link has next (a cursor) but no
// prev. A first page or an after cursor costs the same whatever the page
// depth; page=N skips N-1 pages of rows, which grows with N.
//
// # Errors
//
// Every error is {"error": {"kind", "message", "field", "request_id"}}
// (see Error): 400 request_invalid (field names the culprit: a body
// field, "body" for malformed JSON with its line and column, a query
// parameter or a header), 401 token_missing or token_invalid, 404
// task_not_found, file_not_found or not_found, 405 method_not_allowed
// with Allow, 409 invalid_transition or file_in_use (a file an
// unfinished task takes as input), 413 request_too_large (JSON bodies
// over 1 MiB, uploads over Options.MaxUploadSize), 415
// unsupported_media_type, 422 kind_unavailable (this engine cannot run
// the kind, and why) or idempotency_mismatch (field names what differs
// from the key's first request), 503 unavailable (engine closing), 500
// internal_error, whose details only the server's log has, under the
// request id that the response carries.
//
// # Authentication
//
// Requests carry Authorization: Bearer <token>. Each configured Token has
// a name, which new tasks and files record as created_by; the secret is
// compared in constant time and never logged. Options.AllowNoAuth serves
// requests without a token: the handler cannot see the listener, so the
// program that sets it must listen on a loopback address only (cmd/spool
// does); NewHandler logs a warning when it is set. Such a request must
// name localhost or a loopback address as its Host (against DNS
// rebinding), and a browser's cross-origin POST or DELETE is refused
// (a 401 token_missing), so that no web page can drive the API.
//
// # Versions
//
// Accept-Version may be 2025-08-20, latest, or absent; anything else is a
// 400 naming the supported versions.
//
// # Servers and timeouts
//
// The handler bounds every body it reads, but only the http.Server can
// stop a slow client from holding a connection open. Use NewServer, or
// set at least ReadHeaderTimeout (10 s), ReadTimeout (1 min), WriteTimeout
// (1 min) and IdleTimeout (2 min). POST /files extends its own read
// deadline to 30 minutes for large uploads, and GET /events lifts the
// write deadline for its stream, which heartbeat comments keep alive
// through proxies.
//
// # Logging
//
// Each request is logged once through Options.Logger (slog) with its
// method, path (without the query), status, duration, request id and the
// token's name; never bodies or tokens. Responses carry the request id in
// X-Request-Id.
package api
