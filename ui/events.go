package ui

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/internal/serve"
)

// liveEvent is one message of the live stream.
type liveEvent struct {
	Type spool.EventType `json:"type"`
	Task liveTask        `json:"task"`
}

// events is GET /events: the engine's events as Server-Sent Events, each
// "id: evt_…" and "data: {"type": "task.processing", "task": {…}}". ?task=ID
// keeps that task's events and its workflow steps'. A reconnecting
// EventSource's Last-Event-ID gets the stored events it missed first. A
// cursor that is not an event id is a 400 naming where it came from; one
// past the newest event (another database's) streams from now on.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	taskID := r.URL.Query().Get("task")
	field, last := "Last-Event-ID", r.Header.Get("Last-Event-ID")
	if last == "" {
		// The page's cursor: the last event before it was rendered, or
		// "start" if there was none.
		field, last = "after", r.URL.Query().Get("after")
	}
	catchUp := last != ""
	if last == "start" {
		last = ""
	} else if err := serve.CheckCursor(r.Context(), h.e, field, last); err != nil {
		h.fail(w, r, err)
		return
	}
	began, err := serve.Events(w, r, h.e, &serve.EventStream{CatchUp: catchUp, After: last,
		Hello: "spool ui", Heartbeat: h.heartbeat,
		// A session logged out or expired ends its streams too.
		Valid: func() bool { _, ok := h.session(r); return ok },
		Frame: func(ev *spool.Event) []byte {
			if ev.Task == nil || taskID != "" && ev.Task.ID != taskID && ev.Task.ParentID != taskID {
				return nil
			}
			b, err := json.Marshal(liveEvent{Type: ev.Type, Task: toLive(ev.Task)})
			if err != nil {
				return nil
			}
			return slices.Concat([]byte("id: "+ev.ID+"\ndata: "), b, []byte("\n\n"))
		}})
	if !began {
		h.fail(w, r, err)
	}
}

// maxTimelineEvents bounds how many events a task page reads to find the
// task's own: a task's events are spread among every other task's.
const maxTimelineEvents = 20000

// taskEvents returns the stored events of t and its workflow steps, oldest
// first, and whether the search stopped before the newest event.
func (h *handler) taskEvents(ctx context.Context, t *spool.Task) ([]*spool.Event, bool, error) {
	cursor := h.eventsSince(ctx, t.Created.Add(-time.Second))
	var out []*spool.Event
	for read := 0; read < maxTimelineEvents; {
		evs, err := h.e.Events(ctx, cursor, 1000)
		if err != nil {
			return nil, false, err
		}
		for _, ev := range evs {
			if ev.Task != nil && (ev.Task.ID == t.ID || ev.Task.ParentID == t.ID) {
				out = append(out, ev)
			}
		}
		if len(evs) < 1000 {
			return out, false, nil
		}
		read += len(evs)
		cursor = evs[len(evs)-1].ID
	}
	return out, true, nil
}

// eventsSince returns a cursor just before the first event at or after since,
// so that a task page need not read the events of older tasks. Event ids
// are cursors that encode a commit sequence number (see the SQLite
// store), which this searches by halves, reading one event per step. For
// any other store, or if the guess goes wrong, it returns "": the oldest.
func (h *handler) eventsSince(ctx context.Context, since time.Time) string {
	lastID, err := h.e.Store().LastEventID(ctx)
	if err != nil || lastID == "" {
		return ""
	}
	hi, ok := eventSeq(lastID)
	if !ok {
		return ""
	}
	lo := uint64(0)
	// Invariant: the first event after cursor(lo) is before since, or lo
	// is 0; the first event after cursor(hi) is at or after since, or none.
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		evs, err := h.e.Events(ctx, seqCursor(mid), 1)
		if err != nil {
			return ""
		}
		if len(evs) == 0 || !evs[0].Time.Before(since) {
			hi = mid
		} else {
			lo = mid
		}
	}
	if lo == 0 {
		return "" // the oldest event was not asked about
	}
	return seqCursor(hi)
}

// eventSeq reads the sequence number of an event id of the SQLite store.
func eventSeq(id string) (uint64, bool) {
	u, err := ulid.ParseStrict(strings.TrimPrefix(id, "evt_"))
	if err != nil || !strings.HasPrefix(id, "evt_") {
		return 0, false
	}
	e := u.Entropy()
	return binary.BigEndian.Uint64(e[2:]), true
}

// seqCursor makes the event cursor of sequence number seq.
func seqCursor(seq uint64) string {
	var id ulid.ULID
	var e [10]byte
	binary.BigEndian.PutUint64(e[2:], seq)
	_ = id.SetEntropy(e[:])
	return "evt_" + id.String()
}

// throughput counts the tasks that finished in each of the last minutes,
// from the engine's events, for the overview. It holds an hour of minutes.
type throughput struct {
	mu     sync.Mutex
	counts map[int64]int // unix minute -> tasks finished
	since  time.Time
}

// rateMinute is one minute of throughput.
type rateMinute struct {
	Start time.Time
	Count int
}

func newThroughput(e *spool.Engine) *throughput {
	tp := &throughput{counts: map[int64]int{}, since: time.Now()}
	sub, err := e.Subscribe(context.Background())
	if err != nil {
		return tp
	}
	// The subscription ends when the engine closes.
	go func() {
		for ev := range sub {
			if ev.Task != nil && ev.Task.Status.Terminal() && ev.Type == spool.EventFor(ev.Task.Status) {
				tp.add(ev.Time)
			}
		}
	}()
	return tp
}

func (tp *throughput) add(t time.Time) {
	m := t.Unix() / 60
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.counts[m]++
	for k := range tp.counts {
		if k < m-60 {
			delete(tp.counts, k)
		}
	}
}

// lastMinutes returns the counts of the last n minutes, oldest first, the
// current minute last.
func (tp *throughput) lastMinutes(n int) []rateMinute {
	now := time.Now().Unix() / 60
	tp.mu.Lock()
	defer tp.mu.Unlock()
	out := make([]rateMinute, 0, n)
	for m := now - int64(n) + 1; m <= now; m++ {
		out = append(out, rateMinute{Start: time.Unix(m*60, 0), Count: tp.counts[m]})
	}
	return out
}
