package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
)

// sseEvent is one event as read from the stream.
type sseEvent struct {
	ID, Type string
	Data     spool.Event
}

// stream is an open GET /events.
type stream struct {
	cancel context.CancelFunc
	events chan sseEvent
}

// openStream connects to path and returns once the stream has started.
func (v *env) openStream(path string, hdr ...string) *stream {
	v.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	v.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", v.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := v.srv.Client().Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		v.t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &stream{cancel: cancel, events: make(chan sseEvent, 1000)}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ":") {
		v.t.Fatalf("stream did not start with a comment: %q", sc.Text())
	}
	go func() {
		defer res.Body.Close()
		defer close(s.events)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.ID != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Type = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &ev.Data); err != nil {
					ev.ID = "bad data: " + err.Error()
				}
			}
		}
	}()
	return s
}

// next returns the stream's next event, failing after a generous wait.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("stream ended")
		}
		if ev.ID != ev.Data.ID || ev.Type != string(ev.Data.Type) || ev.Data.Task == nil {
			t.Fatalf("inconsistent event %+v", ev)
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	panic("unreachable")
}

// createEchoes creates n echo tasks over HTTP and waits for them.
func (v *env) createEchoes(n int) []string {
	v.t.Helper()
	var ids []string
	for range n {
		res, b := v.do("POST", "/tasks", `{"kind": "echo"}`)
		if res.StatusCode != 201 {
			v.t.Fatalf("create: %d %s", res.StatusCode, b)
		}
		ids = append(ids, decode[map[string]any](v.t, b)["id"].(string))
	}
	for _, id := range ids {
		v.waitTask(id)
	}
	return ids
}

// TestEventsResume is acceptance 5: a client that disconnects and
// reconnects with Last-Event-ID misses no event, and gets none twice.
func TestEventsResume(t *testing.T) {
	v := newEnv(t, nil)
	ctx := context.Background()
	v.createEchoes(2) // history a cursor-less stream must not replay
	s1 := v.openStream("/events")
	v.createEchoes(5)
	var got []string
	for range 6 {
		got = append(got, s1.next(t).ID)
	}
	s1.cancel()
	v.createEchoes(5) // while disconnected

	s2 := v.openStream("/events", "Last-Event-ID", got[len(got)-1])
	stored, err := v.e.Events(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, ev := range stored {
		if ev.ID >= got[0] {
			want = append(want, ev.ID)
		}
	}
	for len(got) < len(want) {
		got = append(got, s2.next(t).ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events across the reconnect:\n got %v\nwant %v", got, want)
	}
	// Live events still come on the resumed stream.
	ids := v.createEchoes(1)
	if ev := s2.next(t); ev.Data.Task.ID != ids[0] || ev.Type != "task.created" {
		t.Errorf("live event after catch-up: %+v", ev)
	}

	// ?after= and ?task= together: the stored events of one task.
	s3 := v.openStream("/events?task=" + ids[0] + "&after=" + want[0])
	for _, typ := range []string{"task.created", "task.processing"} {
		if ev := s3.next(t); ev.Data.Task.ID != ids[0] || ev.Type != typ {
			t.Errorf("filtered event %s %s, want %s of %s", ev.Type, ev.Data.Task.ID, typ, ids[0])
		}
	}
}

// TestEventsHeartbeat: an idle stream gets comments, and file urls in
// events point at the API.
func TestEventsHeartbeat(t *testing.T) {
	v := newEnv(t, nil)
	v.srv.Config.Handler = apiHandler(v, func(o *apiOptions) { o.Heartbeat = 20 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", v.srv.URL+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := v.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	pings := 0
	for pings < 2 && sc.Scan() {
		if sc.Text() == ": ping" {
			pings++
		}
	}
	if pings < 2 {
		t.Fatalf("no heartbeat: %v", sc.Err())
	}
}

// TestEventsOutliveWriteTimeout: the stream lifts the server's write
// deadline (api.NewServer sets one) and stays open past it.
func TestEventsOutliveWriteTimeout(t *testing.T) {
	v := newEnv(t, nil)
	srv := httptest.NewUnstartedServer(apiHandler(v, func(o *apiOptions) { o.Heartbeat = 50 * time.Millisecond }))
	srv.Config = api.NewServer("", srv.Config.Handler)
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	start := time.Now()
	for time.Since(start) < time.Second {
		if !sc.Scan() {
			t.Fatalf("stream ended after %v: %v", time.Since(start), sc.Err())
		}
	}
}

// TestBadJSONSaysWhere: a malformed body's error gives line and column.
func TestBadJSONSaysWhere(t *testing.T) {
	v := newEnv(t, nil)
	_, b := v.do("POST", "/tasks", "{\"kind\": \"echo\",\n  \"width\": }")
	if msg := decode[errBody](t, b).Error.Message; !strings.Contains(msg, "line 2, column 12") {
		t.Errorf("message %q does not say where", msg)
	}
}
