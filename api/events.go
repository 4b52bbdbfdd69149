package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// eventPage is how many stored events a catch-up reads per query.
const eventPage = 500

// events is GET /events: Server-Sent Events of the engine's events.
//
// Each event is written as "id: evt_…", "event: task.processing" and
// "data: {the event JSON with its task}". A client that reconnects with
// the Last-Event-ID header (browsers' EventSource do) or ?after=evt_…
// gets every event after that one, stored ones first; without either it
// gets the events from now on. ?task=ID keeps the events of that task and
// of its workflow steps; ?kind= those of tasks of that kind. An idle
// stream gets a comment every Options.Heartbeat. The stream ends when the
// client goes or the engine closes.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	field, cursor := "Last-Event-ID", r.Header.Get("Last-Event-ID")
	if cursor == "" {
		field, cursor = "after", q.Get("after")
	}
	if cursor != "" && (!strings.HasPrefix(cursor, "evt_") || len(cursor) > 64) {
		h.fail(w, r, badRequest(field, "%q is not an event id (evt_…)", cursor))
		return
	}
	taskID, kind := q.Get("task"), q.Get("kind")
	ctx := r.Context()
	// Subscribing before the catch-up leaves no gap between the two: the
	// subscription's events that the catch-up already sent are skipped.
	sub, err := h.e.Subscribe(ctx)
	if err != nil {
		h.failErr(w, r, err, "")
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's WriteTimeout
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	flush := func() bool {
		return bw.Flush() == nil && rc.Flush() == nil
	}
	_, _ = bw.WriteString(": spool events\nretry: 2000\n\n")
	if !flush() {
		return
	}
	base := h.baseURL(r)
	write := func(ev *spool.Event) {
		if ev.Task == nil || taskID != "" && ev.Task.ID != taskID && ev.Task.ParentID != taskID ||
			kind != "" && ev.Task.Kind != kind {
			return
		}
		c := *ev
		c.Task = taskView(base, ev.Task)
		b, err := json.Marshal(&c)
		if err != nil {
			return
		}
		_, _ = bw.WriteString("id: " + ev.ID + "\nevent: " + string(ev.Type) + "\ndata: ")
		_, _ = bw.Write(b)
		_, _ = bw.WriteString("\n\n")
	}
	last := cursor
	for last != "" {
		evs, err := h.e.Events(ctx, last, eventPage)
		if err != nil {
			if ctx.Err() == nil {
				h.log.ErrorContext(ctx, "api: read events", "request_id", state(w).id, "err", err)
			}
			return // the client reconnects from the last id it got
		}
		for _, ev := range evs {
			write(ev)
			last = ev.ID
		}
		if !flush() {
			return
		}
		if len(evs) < eventPage {
			break
		}
	}
	tick := time.NewTicker(h.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub:
			if !ok {
				return
			}
			if last != "" && ev.ID <= last {
				continue
			}
			write(&ev)
			// Write what else is queued before flushing, for bursts.
			for more := true; more; {
				select {
				case ev, ok := <-sub:
					if !ok {
						flush()
						return
					}
					if last == "" || ev.ID > last {
						write(&ev)
					}
				default:
					more = false
				}
			}
			if !flush() {
				return
			}
		case <-tick.C:
			_, _ = bw.WriteString(": ping\n\n")
			if !flush() {
				return
			}
		}
	}
}
