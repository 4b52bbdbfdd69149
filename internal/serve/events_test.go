package serve

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// A client that stops reading, its connection open, ends its stream once
// a write has waited WriteTimeout, instead of holding the handler for
// good.
func TestEventsEndWhenClientStopsReading(t *testing.T) {
	ctx := context.Background()
	e, err := spool.Open(ctx, spool.Config{Path: filepath.Join(t.TempDir(), "spool.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	e.Register("x", spool.HandlerFunc(nil))
	reqs := make([]spool.Request, 1000)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: "x"}
	}
	for range 20 { // 20,000 events of 1 KiB: more than the sockets hold
		if _, err := e.CreateMany(ctx, reqs); err != nil {
			t.Fatal(err)
		}
	}
	frame := append(append([]byte("data: "), bytes.Repeat([]byte("x"), 1024)...), "\n\n"...)
	ended := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := Events(w, r, e, &EventStream{CatchUp: true, Hello: "test", Heartbeat: time.Hour,
			Frame: func(*spool.Event) []byte { return frame }, WriteTimeout: 200 * time.Millisecond})
		ended <- err
	}))
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing from here on.
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("the stream ended with %v, want nil (the client went away)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream still waits on a client that reads nothing")
	}
}

// HEAD answers with the stream's headers and ends, rather than streaming
// events that no one will read.
func TestEventsHead(t *testing.T) {
	ctx := context.Background()
	e, err := spool.Open(ctx, spool.Config{Path: filepath.Join(t.TempDir(), "spool.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	ended := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(ended)
		Events(w, r, e, &EventStream{Hello: "test", Heartbeat: time.Hour,
			Frame: func(*spool.Event) []byte { return nil }})
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Head(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("HEAD went on streaming")
	}
}

// A well-formed cursor past the newest event (another database's) streams
// the events from now on: its id sorts after theirs, and the stream
// skipped every one of them, for good.
func TestEventsAfterPastNewest(t *testing.T) {
	ctx := context.Background()
	e, err := spool.Open(ctx, spool.Config{Path: filepath.Join(t.TempDir(), "spool.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	e.Register("x", spool.HandlerFunc(nil))
	frames := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Events(w, r, e, &EventStream{CatchUp: true, After: "evt_7ZZZZZZZZZ0000000100000000" /* seq 1<<40 */, Hello: "test", Heartbeat: time.Hour,
			Frame: func(ev *spool.Event) []byte { frames <- ev.Task.ID; return nil }})
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	task, err := e.Create(ctx, spool.Request{Kind: "x"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-frames:
		if id != task.ID {
			t.Errorf("streamed an event of %s, want %s", id, task.ID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the new task's event was never streamed")
	}
}
