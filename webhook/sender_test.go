package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool/webhook"
)

// receiver is a test endpoint that records requests and answers with
// respond.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
	bodies  []string
}

func newReceiver(t *testing.T, respond http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Clone())
		r.bodies = append(r.bodies, string(b))
		r.mu.Unlock()
		respond(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.headers)
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func TestSendOutcomes(t *testing.T) {
	for _, tt := range []struct {
		code      int
		want      webhook.Outcome
		ok, gone  bool
		excerpted string
	}{
		{http.StatusOK, webhook.Delivered, true, false, "thanks"},
		{http.StatusNoContent, webhook.Delivered, true, false, ""},
		{http.StatusInternalServerError, webhook.Failed, false, false, "thanks"},
		{http.StatusBadRequest, webhook.Failed, false, false, "thanks"},
		{http.StatusNotModified, webhook.Failed, false, false, ""},
		{http.StatusGone, webhook.Gone, false, true, "thanks"},
	} {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			sec := newSecret(t)
			rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.code)
				io.WriteString(w, "thanks")
			})
			s := &webhook.Sender{Client: rcv.Client(), Secrets: []webhook.Secret{sec}}
			res, err := s.Send(context.Background(), webhook.Message{ID: "msg_1", URL: rcv.URL, Body: []byte(kaBody)})
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.code || res.Outcome() != tt.want || res.OK() != tt.ok || res.Gone() != tt.gone ||
				res.Excerpt != tt.excerpted || res.RetryAfter != 0 || res.Latency <= 0 {
				t.Errorf("Result = %+v (%v), want %d %v", res, res.Outcome(), tt.code, tt.want)
			}
			h := rcv.headers[0]
			if h.Get("Content-Type") != "application/json" || rcv.bodies[0] != kaBody {
				t.Errorf("request: Content-Type %q, body %q", h.Get("Content-Type"), rcv.bodies[0])
			}
			if err := webhook.Verify(h, []byte(rcv.bodies[0]), nil, sec); err != nil {
				t.Errorf("receiver cannot verify the request: %v", err)
			}
		})
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	target := newReceiver(t, status(http.StatusOK))
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, code)
		})
		client := rcv.Client()
		s := &webhook.Sender{Client: client, Secrets: []webhook.Secret{newSecret(t)}}
		res, err := s.Send(context.Background(), webhook.Message{ID: "msg_1", URL: rcv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != code || res.Outcome() != webhook.Failed {
			t.Errorf("%d: Result %+v, want a failed attempt", code, res)
		}
		if client.CheckRedirect != nil {
			t.Error("Send changed the caller's http.Client")
		}
	}
	if n := target.requests(); n != 0 {
		t.Errorf("redirect target got %d requests", n)
	}
}

func TestSendRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		header   string
		min, max time.Duration
	}{
		{"120", 120 * time.Second, 120 * time.Second},
		{"0", 0, 0},
		{"-5", 0, 0},
		{"soon", 0, 0},
		{"", 0, 0},
		// HTTP dates have whole seconds; allow for that and a slow machine.
		{time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), 58 * time.Minute, time.Hour},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0, 0},
		{"99999999999999999999", 0, 0},
	} {
		rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
			if tt.header != "" {
				w.Header().Set("Retry-After", tt.header)
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		s := &webhook.Sender{Client: rcv.Client(), Secrets: []webhook.Secret{newSecret(t)}}
		res, err := s.Send(context.Background(), webhook.Message{ID: "msg_1", URL: rcv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if res.RetryAfter < tt.min || res.RetryAfter > tt.max || res.Outcome() != webhook.Failed {
			t.Errorf("Retry-After %q: %v (%v), want %v..%v", tt.header, res.RetryAfter, res.Outcome(), tt.min, tt.max)
		}
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	s := &webhook.Sender{Client: rcv.Client(), Secrets: []webhook.Secret{newSecret(t)}, Timeout: 50 * time.Millisecond}
	res, err := s.Send(context.Background(), webhook.Message{ID: "msg_1", URL: rcv.URL})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if res == nil || res.StatusCode != 0 || res.Latency <= 0 || res.Timestamp.IsZero() {
		t.Errorf("Result = %+v, want Timestamp and Latency only", res)
	}
}

func TestSendRefusedConnection(t *testing.T) {
	rcv := newReceiver(t, status(http.StatusOK))
	url := rcv.URL
	rcv.Close()
	s := &webhook.Sender{Secrets: []webhook.Secret{newSecret(t)}}
	if _, err := s.Send(context.Background(), webhook.Message{ID: "msg_1", URL: url}); err == nil {
		t.Fatal("Send to a closed server succeeded")
	}
}

// TestSendLargeResponse: an endless response body is cut off at the bound
// instead of being read to the end.
func TestSendLargeResponse(t *testing.T) {
	var written atomic.Int64
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("y", 32<<10))
		for r.Context().Err() == nil && written.Load() < 1<<30 {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	s := &webhook.Sender{Client: rcv.Client(), Secrets: []webhook.Secret{newSecret(t)}, Timeout: time.Minute}
	res, err := s.Send(context.Background(), webhook.Message{ID: "msg_1", URL: rcv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || len(res.Excerpt) != webhook.ExcerptLen {
		t.Errorf("Result: %v, %d excerpt bytes", res.Outcome(), len(res.Excerpt))
	}
	if n := written.Load(); n >= 1<<30 {
		t.Errorf("the receiver wrote all %d bytes: the response was read to the end", n)
	}
}

// TestSendRepeatedAttempts: every attempt of a delivery carries the same
// webhook-id, its own timestamp and a signature that verifies at that time.
func TestSendRepeatedAttempts(t *testing.T) {
	sec := newSecret(t)
	rcv := newReceiver(t, status(http.StatusInternalServerError))
	s := &webhook.Sender{Client: rcv.Client(), Secrets: []webhook.Secret{sec}}
	attempts := []time.Time{t0, t0.Add(5 * time.Second), t0.Add(5 * time.Hour)}
	for _, at := range attempts {
		res, err := s.Send(context.Background(), webhook.Message{ID: "msg_same", URL: rcv.URL, Body: []byte(kaBody), Timestamp: at})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Timestamp.Equal(at) {
			t.Errorf("Result.Timestamp = %v, want %v", res.Timestamp, at)
		}
	}
	sigs := map[string]bool{}
	for i, h := range rcv.headers {
		if h.Get(webhook.HeaderID) != "msg_same" {
			t.Errorf("attempt %d: webhook-id %q", i, h.Get(webhook.HeaderID))
		}
		sigs[h.Get(webhook.HeaderSignature)] = true
		clock := &webhook.VerifyOptions{Now: func() time.Time { return attempts[i] }}
		if err := webhook.Verify(h, []byte(rcv.bodies[i]), clock, sec); err != nil {
			t.Errorf("attempt %d does not verify at its own time: %v", i, err)
		}
	}
	if len(sigs) != len(attempts) {
		t.Errorf("%d distinct signatures for %d attempts", len(sigs), len(attempts))
	}
}

func TestSendRefusesInvalid(t *testing.T) {
	sec := newSecret(t)
	for _, tt := range []struct {
		name string
		s    webhook.Sender
		msg  webhook.Message
		want error
	}{
		{"no secrets", webhook.Sender{}, webhook.Message{ID: "m", URL: "http://127.0.0.1:1/"}, webhook.ErrNoSecrets},
		{"zero secret", webhook.Sender{Secrets: []webhook.Secret{{}}}, webhook.Message{ID: "m", URL: "http://127.0.0.1:1/"}, webhook.ErrInvalidSecret},
		{"no id", webhook.Sender{Secrets: []webhook.Secret{sec}}, webhook.Message{URL: "http://127.0.0.1:1/"}, nil},
		{"id with newline", webhook.Sender{Secrets: []webhook.Secret{sec}}, webhook.Message{ID: "m\r\nX-Evil: 1", URL: "http://127.0.0.1:1/"}, nil},
		{"no url", webhook.Sender{Secrets: []webhook.Secret{sec}}, webhook.Message{ID: "m"}, nil},
		{"ftp url", webhook.Sender{Secrets: []webhook.Secret{sec}}, webhook.Message{ID: "m", URL: "ftp://127.0.0.1:1/"}, nil},
	} {
		res, err := tt.s.Send(context.Background(), tt.msg)
		if err == nil || res != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, %v; want an error and no Result", tt.name, res, err)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	var zero webhook.Outcome
	for o, want := range map[webhook.Outcome]string{zero: "failed", webhook.Delivered: "delivered", webhook.Gone: "gone", 7: "Outcome(7)"} {
		if o.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(o), o.String(), want)
		}
	}
}
