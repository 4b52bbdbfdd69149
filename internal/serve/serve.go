// Package serve holds what the API and the dashboard both serve the same
// way: bearer tokens, a file's bytes, and the engine's events as
// Server-Sent Events.
package serve

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// Tokens are the bearer tokens a handler accepts, by name. The zero value
// accepts none.
type Tokens struct {
	list []token
}

type token struct {
	name string
	sum  [sha256.Size]byte
}

// Add accepts secret as the token named name. A blank secret is left
// out: it would let in a request that sends an empty token, as a secret
// read from an unset environment variable would.
func (ts *Tokens) Add(name, secret string) {
	if strings.TrimSpace(secret) == "" {
		return
	}
	// Trimmed as Name trims what is sent: else a secret configured with a
	// space around it (a tokens file's trailing blank) never matches.
	ts.list = append(ts.list, token{name: name, sum: sha256.Sum256([]byte(strings.TrimSpace(secret)))})
}

// Len is the number of tokens.
func (ts *Tokens) Len() int { return len(ts.list) }

// Name returns the name of the token whose secret is secret (spaces
// around it ignored). Every token is compared, in constant time over
// hashes of equal length, so that neither the match's position nor the
// secrets' lengths show in the timing.
func (ts *Tokens) Name(secret string) (string, bool) {
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	found := -1
	for i := range ts.list {
		if subtle.ConstantTimeCompare(sum[:], ts.list[i].sum[:]) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return ts.list[found].name, true
}

// LoopbackHost reports whether host, a request's Host with or without its
// port, names this machine's loopback: localhost or a loopback address. A
// handler that serves without a token on a loopback listener checks it:
// a web page whose own name an attacker points at 127.0.0.1 (DNS
// rebinding) reaches that listener with its name as the Host.
func LoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// SendTime is how long a file's bytes may take to be sent, beyond a
// server's WriteTimeout, which is meant for small answers.
const SendTime = 30 * time.Minute

// The defaults the API and the dashboard share, so that one server's two
// faces accept the same uploads and keep streams alive alike.
const (
	// DefaultMaxUpload is the largest upload when none is configured.
	DefaultMaxUpload = 1 << 30
	// DefaultHeartbeat is how often an idle event stream gets a comment.
	DefaultHeartbeat = 15 * time.Second
)

// File serves a file's bytes from rs with http.ServeContent (Range,
// conditional requests), its ETag its id, inline under its filename. The
// bytes are anyone's upload: a browser never runs them as a page of this
// origin, nor guesses their type.
func File(w http.ResponseWriter, r *http.Request, f *spool.File, rs io.ReadSeeker) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(SendTime))
	hd := w.Header()
	hd.Set("ETag", `"`+f.ID+`"`)
	if f.Type != "" {
		hd.Set("Content-Type", f.Type)
	}
	hd.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": f.Filename}))
	hd.Set("Content-Security-Policy", "sandbox")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "private, max-age=31536000, immutable")
	var mod time.Time
	if f.Created != nil {
		mod = *f.Created
	}
	http.ServeContent(w, r, f.Filename, mod, rs)
}

// EventStream says what Events sends.
type EventStream struct {
	// CatchUp sends the stored events after After first (all of them when
	// After is empty), then the new ones; without it, only new events. An
	// After past the newest event sends the new ones.
	CatchUp bool
	After   string
	// Hello is a comment the stream starts with.
	Hello string
	// Heartbeat is how often an idle stream gets a comment, so that
	// proxies keep it open.
	Heartbeat time.Duration
	// Frame returns an event's frame ("id: …\ndata: …\n\n"), or nil to
	// leave the event out.
	Frame func(*spool.Event) []byte
	// Valid, if set, is asked at each heartbeat whether the stream may go
	// on (its session was not logged out and has not expired); when not,
	// the stream ends.
	Valid func() bool
	// WriteTimeout bounds each write to the client: a client that stops
	// reading (its connection alive, its window full) ends the stream then
	// instead of holding it open for good. Defaults to DefaultStreamWrite.
	WriteTimeout time.Duration
}

// DefaultStreamWrite is how long one write of an event stream may wait
// for the client to read.
const DefaultStreamWrite = time.Minute

// CheckCursor returns a *spool.ValidationError naming field (after, or
// Last-Event-ID) if cursor, unless "", is not an event id of e's store.
// The store judges it before a stream begins: once begun, its refusal
// could only end the stream, and an EventSource would open it again with
// the same cursor every two seconds, for good.
func CheckCursor(ctx context.Context, e *spool.Engine, field, cursor string) error {
	if cursor == "" {
		return nil
	}
	if !strings.HasPrefix(cursor, "evt_") || len(cursor) > 64 {
		return &spool.ValidationError{Field: field, Reason: fmt.Sprintf("%q is not an event id (evt_…)", cursor)}
	}
	_, err := e.Events(ctx, cursor, 1)
	if ve, ok := errors.AsType[*spool.ValidationError](err); ok {
		return &spool.ValidationError{Field: field, Reason: ve.Reason} // the reason names the cursor
	}
	return err
}

// eventPage is how many stored events a catch-up reads per query.
const eventPage = 500

// Events streams e's events to w as Server-Sent Events until the client
// goes or the engine closes. It subscribes before anything is written, so
// that the caller can answer Subscribe's error (began false); the
// subscription begins before the catch-up, which leaves no gap between
// the two, and the subscription's events that the catch-up already sent
// are skipped. Once begun, it returns a store's read error, after which
// the client reconnects from the last id it got, or nil.
func Events(w http.ResponseWriter, r *http.Request, e *spool.Engine, s *EventStream) (began bool, err error) {
	ctx := r.Context()
	sub, err := e.Subscribe(ctx)
	if err != nil {
		return false, err
	}
	rc := http.NewResponseController(w)
	writeTime := s.WriteTimeout
	if writeTime <= 0 {
		writeTime = DefaultStreamWrite
	}
	// A stream outlives the server's WriteTimeout: each write gets its own
	// deadline instead, set before anything reaches the connection (the
	// buffer below may write through when it fills).
	arm := func() { _ = rc.SetWriteDeadline(time.Now().Add(writeTime)) }
	arm()
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return true, nil // the headers are the answer: no stream to nowhere
	}
	bw := bufio.NewWriter(w)
	flush := func() bool { arm(); return bw.Flush() == nil && rc.Flush() == nil }
	_, _ = bw.WriteString(": " + s.Hello + "\nretry: 2000\n\n")
	if !flush() {
		return true, nil
	}
	write := func(ev *spool.Event) {
		if b := s.Frame(ev); b != nil {
			arm()
			_, _ = bw.Write(b)
		}
	}
	last := s.After
	for catchUp := s.CatchUp; catchUp; {
		evs, err := e.Events(ctx, last, eventPage)
		if err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			return true, err
		}
		for _, ev := range evs {
			write(ev)
			last = ev.ID
		}
		if !flush() {
			return true, nil
		}
		catchUp = len(evs) == eventPage
	}
	if last == s.After {
		// The catch-up read nothing, so no live event can repeat it. And
		// After may be well-formed but past the newest event (another
		// database's, or made up), with every live id sorting before it:
		// the stream would skip them all, for good.
		last = ""
	}
	tick := time.NewTicker(s.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case ev, ok := <-sub:
			if !ok {
				return true, nil
			}
			if last == "" || ev.ID > last {
				write(&ev)
			}
			// Write what else is queued before flushing, for bursts.
			if len(sub) == 0 && !flush() {
				return true, nil
			}
		case <-tick.C:
			if s.Valid != nil && !s.Valid() {
				_ = flush()
				return true, nil
			}
			arm()
			_, _ = bw.WriteString(": ping\n\n")
			if !flush() {
				return true, nil
			}
		}
	}
}
