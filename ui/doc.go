// Package ui serves spool's web dashboard: an overview of the engine
// (counts by status and kind, queue depth, oldest pending task, tasks
// finished per minute, the kinds it can run and why not), the task list
// with filters, cursor pages and live updates, each task's page (status,
// progress, attempts, options, files with media previews, the events
// timeline, webhook deliveries, Cancel, Retry-as-new and Delete), a
// workflow's tree of steps, and a create form generated from the kinds'
// specs.
//
// Pages are rendered on the server with html/template; the assets (one
// stylesheet, one small script that follows the dashboard's own event
// stream with EventSource) are embedded, so there is no build step.
//
// # Mounting
//
// The handler serves the paths under Options.Prefix ("/ui" by default)
// itself: mount it at that prefix without http.StripPrefix, beside the
// API if you serve it too:
//
//	mux.Handle("/ui/", ui.NewHandler(engine, &ui.Options{Tokens: tokens}))
//	mux.Handle("/", api.NewHandler(engine, &api.Options{Tokens: tokens}))
//
// # Authentication
//
// A user logs in with one of the API's tokens (Options.Tokens). The
// dashboard then sets an HttpOnly, SameSite=Strict session cookie (Secure
// on TLS connections) holding the token's name, an expiry and a random
// nonce, signed with a key made at random for each handler, never the
// token; a restart of the program logs everyone out. Logging out ends the
// session on the server too, so that a copy of the cookie no longer logs
// in (held in memory until the session would have expired) and its live
// streams end at their next heartbeat, while other
// logins with the same token stay logged in. Every page, stream, file
// and action needs
// the session. Actions are POST forms, refused unless they carry the
// session's CSRF token and, for browsers that send Sec-Fetch-Site or
// Origin, come from the dashboard's own origin (http.CrossOriginProtection).
//
// Options.AllowNoAuth turns the login off for a listener on a loopback
// address, and refuses requests that arrived on any other address or
// name another host than localhost or a loopback address (a page of
// another site whose name an attacker points at 127.0.0.1).
//
// # Routes
//
// Under the prefix: / (overview), /login, /logout, /tasks (the list, with
// ?status, kind, ref, folder, parent and after), /tasks/{id} (a task or
// workflow), /new (the create form), POST /tasks (create),
// POST /tasks/{id}/cancel, /retry and /delete, /files/{id}/content (a
// file's bytes with Range, for the previews), /events (the live stream)
// and /static/.
package ui
