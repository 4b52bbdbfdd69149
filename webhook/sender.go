package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sender defaults.
const (
	// DefaultTimeout bounds an attempt unless Sender.Timeout is set.
	DefaultTimeout = 15 * time.Second
	// DefaultMaxResponse is how many response bytes are read unless
	// Sender.MaxResponse is set: 64 KiB.
	DefaultMaxResponse = 64 << 10
	// ExcerptLen is the most response bytes a Result keeps.
	ExcerptLen = 1 << 10
)

// Sender makes single signed delivery attempts. It does not queue, retry
// or order messages: its caller does, guided by each Result. A Sender is
// safe for concurrent use once set up.
type Sender struct {
	// Client sends the requests; the engine passes its SSRF-safe client.
	// Send uses a copy that never follows redirects, so the Client itself
	// is not modified. Defaults to http.DefaultClient.
	Client *http.Client
	// Secrets sign every attempt; all of them, so that a secret can be
	// rotated. Send refuses an empty list.
	Secrets []Secret
	// Timeout bounds an attempt from connecting to reading the response.
	// Defaults to DefaultTimeout (15 s).
	Timeout time.Duration
	// MaxResponse is the most response bytes read (so that a short answer
	// leaves the connection reusable); a longer response is cut off and its
	// connection closed. Defaults to DefaultMaxResponse (64 KiB).
	MaxResponse int64
}

// Message is one delivery attempt's content.
type Message struct {
	// ID is the webhook-id: the same on every attempt of a delivery, so that
	// receivers can deduplicate. Required.
	ID string
	// URL is the endpoint, http or https. Required.
	URL string
	// Body is POSTed as application/json.
	Body []byte
	// Timestamp is the attempt's time, sent as webhook-timestamp and
	// signed, so a retry hours later is still fresh. Defaults to now.
	Timestamp time.Time
}

// Outcome classifies a Result for the caller's retry logic.
type Outcome int

// Outcomes of an attempt that got an HTTP response.
const (
	// Failed is any response but 2xx and 410, 3xx included, and the zero
	// Outcome: try again later.
	Failed Outcome = iota
	// Delivered is a 2xx response: the delivery is done.
	Delivered
	// Gone is 410 Gone: the receiver asks never to be sent anything again,
	// so the endpoint should be disabled rather than retried.
	Gone
)

// String returns "failed", "delivered" or "gone".
func (o Outcome) String() string {
	switch o {
	case Failed:
		return "failed"
	case Delivered:
		return "delivered"
	case Gone:
		return "gone"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Result describes one attempt.
type Result struct {
	// Timestamp is the attempt's time as sent in webhook-timestamp.
	Timestamp time.Time
	// StatusCode is the response's status; 0 if there was none.
	StatusCode int
	// Latency is the time from sending the request to the end of reading
	// the response (or to the failure).
	Latency time.Duration
	// Excerpt is the response body's first ExcerptLen bytes, invalid UTF-8
	// replaced, for recording beside the attempt.
	Excerpt string
	// RetryAfter is the wait the response's Retry-After header asks for,
	// given in seconds or as an HTTP date; 0 if absent, invalid or past.
	// It is not capped: the caller decides how much of it to honour.
	RetryAfter time.Duration
}

// Outcome classifies the response by StatusCode.
func (r *Result) Outcome() Outcome {
	switch {
	case r.StatusCode >= 200 && r.StatusCode < 300:
		return Delivered
	case r.StatusCode == http.StatusGone:
		return Gone
	}
	return Failed
}

// OK reports whether the response was 2xx.
func (r *Result) OK() bool { return r.Outcome() == Delivered }

// Gone reports whether the response was 410 Gone.
func (r *Result) Gone() bool { return r.Outcome() == Gone }

// Send POSTs msg once, signed with every secret under the attempt's
// timestamp, and classifies the response. Any HTTP response, 3xx, 4xx and
// 5xx included, is a completed attempt: Send returns its Result and a nil
// error. A failed attempt without a response (refused connection, timeout,
// ctx cancelled) returns an error, which a caller should treat as
// retryable, and a Result with Timestamp and Latency set. An invalid
// message or Sender returns an error and a nil Result, without sending.
func (s *Sender) Send(ctx context.Context, msg Message) (*Result, error) {
	if err := checkSecrets(s.Secrets); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	if msg.ID == "" || strings.ContainsFunc(msg.ID, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		// Caught here rather than by the transport, whose error would look
		// like a failed attempt worth retrying.
		return nil, errors.New("webhook: send: message ID is empty or has control characters")
	}
	ts := msg.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	sig, err := Sign(msg.ID, ts, msg.Body, s.Secrets...)
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, msg.URL, bytes.NewReader(msg.Body))
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, errors.New("webhook: send: URL is not http or https")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, msg.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)

	res := &Result{Timestamp: time.Unix(ts.Unix(), 0)}
	start := time.Now()
	resp, err := s.client().Do(req)
	if err != nil {
		res.Latency = time.Since(start)
		return res, fmt.Errorf("send: %w", err)
	}
	// A read error after the status arrived does not change the outcome:
	// the receiver has answered. Whatever is left unread beyond the bound is
	// dropped with the connection by Close.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, s.maxResponse()))
	resp.Body.Close()
	res.Latency = time.Since(start)
	res.StatusCode = resp.StatusCode
	res.Excerpt = strings.ToValidUTF8(string(b[:min(len(b), ExcerptLen)]), "\uFFFD")
	res.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	return res, nil
}

func (s *Sender) client() *http.Client {
	c := http.DefaultClient
	if s.Client != nil {
		c = s.Client
	}
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

func (s *Sender) timeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

func (s *Sender) maxResponse() int64 {
	if s.MaxResponse <= 0 {
		return DefaultMaxResponse
	}
	return s.MaxResponse
}

// retryAfter parses a Retry-After value, delay-seconds or an HTTP date,
// into a wait from now.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		// Beyond this a Duration overflows; no receiver means 292 years.
		if n > int64(1<<63-1)/int64(time.Second) {
			n = int64(1<<63-1) / int64(time.Second)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
