package api

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/internal/serve"
)

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
	if err := serve.CheckCursor(r.Context(), h.e, field, cursor); err != nil {
		h.failErr(w, r, err, "")
		return
	}
	taskID, kind := q.Get("task"), q.Get("kind")
	base := h.baseURL(r)
	began, err := serve.Events(w, r, h.e, &serve.EventStream{CatchUp: cursor != "", After: cursor,
		Hello: "spool events", Heartbeat: h.heartbeat,
		Frame: func(ev *spool.Event) []byte {
			if ev.Task == nil || taskID != "" && ev.Task.ID != taskID && ev.Task.ParentID != taskID ||
				kind != "" && ev.Task.Kind != kind {
				return nil
			}
			c := *ev
			c.Task = taskView(base, ev.Task)
			b, err := json.Marshal(&c)
			if err != nil {
				return nil
			}
			return slices.Concat([]byte("id: "+ev.ID+"\nevent: "+string(ev.Type)+"\ndata: "), b, []byte("\n\n"))
		}})
	switch {
	case !began:
		h.failErr(w, r, err, "")
	case err != nil:
		h.log.ErrorContext(r.Context(), "api: read events", "request_id", state(w).id, "err", err)
	}
}
