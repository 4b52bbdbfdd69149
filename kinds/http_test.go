package kinds_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// loopback lets engines and handlers reach the tests' servers.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// httpOutput is the output of an http task.
type httpOutput struct {
	Status       int               `json:"status"`
	URL          string            `json:"url"`
	Headers      map[string]string `json:"headers"`
	Body         json.RawMessage   `json:"body"`
	BodyEncoding string            `json:"body_encoding"`
	Size         int               `json:"size"`
}

// newHTTPEngine returns an engine whose Create accepts loopback urls and
// whose http kind may reach them.
func newHTTPEngine(t *testing.T, cfg spool.Config) *spool.Engine {
	t.Helper()
	cfg.AllowNetworks = loopback
	return newEngine(t, cfg, nil)
}

func httpOutputOf(t *testing.T, task *spool.Task) *httpOutput {
	t.Helper()
	if task.Status != spool.StatusCompleted {
		t.Fatalf("task is %s (error %q), want completed", task.Status, task.Error)
	}
	var out httpOutput
	if err := json.Unmarshal(task.Output, &out); err != nil {
		t.Fatalf("decode output %s: %v", task.Output, err)
	}
	return &out
}

// TestHTTPGetJSON: a JSON response is parsed into the output's body, with
// the status, the headers and the size.
func TestHTTPGetJSON(t *testing.T) {
	t.Parallel()
	const body = `{"ok": true, "id": 12345678901234567890, "tags": ["a", "b"]}`
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.UserAgent() != "spool" {
			http.Error(w, "want GET from spool, got "+r.Method+" from "+r.UserAgent(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Add("X-Multi", "one")
		w.Header().Add("X-Multi", "two")
		io.WriteString(w, body)
	})
	e := newHTTPEngine(t, spool.Config{})
	out := httpOutputOf(t, run(t, e, spool.Request{Kind: "http", URL: srv.URL + "/items/1"}))
	if out.Status != 200 || out.URL != srv.URL+"/items/1" || out.Size != len(body) || out.BodyEncoding != "" {
		t.Errorf("output = %+v, want status 200 from %s/items/1 with %d bytes", out, srv.URL, len(body))
	}
	// The big integer survives: the body is kept as JSON, not as float64.
	if got := string(out.Body); got != `{"ok":true,"id":12345678901234567890,"tags":["a","b"]}` {
		t.Errorf("body = %s, want the parsed JSON", got)
	}
	if out.Headers["content-type"] != "application/json; charset=utf-8" || out.Headers["x-multi"] != "one, two" {
		t.Errorf("headers = %v, want lower-case names with joined values", out.Headers)
	}
}

// TestHTTPPostJSON: method (in any case), headers and a JSON body reach
// the server, which echoes them.
func TestHTTPPostJSON(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, echo)
	e := newHTTPEngine(t, spool.Config{})
	out := httpOutputOf(t, run(t, e, spool.Request{Kind: "http", URL: srv.URL + "/hook", Options: map[string]any{
		"method":  "post",
		"headers": map[string]any{"X-Token": "secret", "User-Agent": "my-agent"},
		"body":    map[string]any{"name": "spool", "n": 3},
	}}))
	var got echoed
	if err := json.Unmarshal(out.Body, &got); err != nil {
		t.Fatalf("decode echoed body %s: %v", out.Body, err)
	}
	want := echoed{Method: "POST", ContentType: "application/json", Token: "secret", UserAgent: "my-agent",
		Body: `{"n":3,"name":"spool"}`}
	if got != want {
		t.Errorf("server saw %+v, want %+v", got, want)
	}
}

// TestHTTPStringBody: a string body is sent as is, as text/plain unless
// the headers say otherwise.
func TestHTTPStringBody(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, echo)
	e := newHTTPEngine(t, spool.Config{})
	tests := []struct {
		name        string
		headers     map[string]any
		contentType string
	}{
		{"default type", nil, "text/plain; charset=utf-8"},
		{"given type", map[string]any{"content-type": "application/xml"}, "application/xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := map[string]any{"method": "PUT", "body": "<a>1</a>"}
			if tt.headers != nil {
				opts["headers"] = tt.headers
			}
			out := httpOutputOf(t, run(t, e, spool.Request{Kind: "http", URL: srv.URL, Options: opts}))
			var got echoed
			if err := json.Unmarshal(out.Body, &got); err != nil {
				t.Fatalf("decode echoed body %s: %v", out.Body, err)
			}
			if got.Method != "PUT" || got.ContentType != tt.contentType || got.Body != "<a>1</a>" {
				t.Errorf("server saw %+v, want PUT of <a>1</a> as %s", got, tt.contentType)
			}
		})
	}
}

// echoed is what echo answers.
type echoed struct {
	Method      string `json:"method"`
	ContentType string `json:"content_type"`
	Token       string `json:"token"`
	UserAgent   string `json:"user_agent"`
	Body        string `json:"body"`
}

// echo answers with the request's method, some headers and its body.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(echoed{Method: r.Method, ContentType: r.Header.Get("Content-Type"),
		Token: r.Header.Get("X-Token"), UserAgent: r.UserAgent(), Body: string(b)})
}

// TestHTTPBodies: how each kind of response body appears in the output.
func TestHTTPBodies(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/text":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "héllo")
		case "/bad-json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "{nope")
		case "/problem":
			w.Header().Set("Content-Type", "application/problem+json")
			io.WriteString(w, `{"title":"x"}`)
		case "/binary":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte{0xff, 0x00, 0xfe})
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	e := newHTTPEngine(t, spool.Config{})
	tests := []struct {
		path, body, encoding string
		size                 int
	}{
		{"/text", `"héllo"`, "", 6},
		{"/bad-json", `"{nope"`, "", 5},
		{"/problem", `{"title":"x"}`, "", 13},
		{"/binary", `"/wD+"`, "base64", 3},
		{"/empty", `null`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			out := httpOutputOf(t, run(t, e, spool.Request{Kind: "http", URL: srv.URL + tt.path}))
			if string(out.Body) != tt.body || out.BodyEncoding != tt.encoding || out.Size != tt.size {
				t.Errorf("body %s (encoding %q, size %d), want %s (%q, %d)", out.Body, out.BodyEncoding, out.Size,
					tt.body, tt.encoding, tt.size)
			}
		})
	}
}

// TestHTTPNotFound: a 4xx fails the task at once, quoting the answer.
func TestHTTPNotFound(t *testing.T) {
	t.Parallel()
	srv, hits := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such item", http.StatusNotFound)
	})
	e := newHTTPEngine(t, spool.Config{MaxAttempts: 3})
	task := run(t, e, spool.Request{Kind: "http", URL: srv.URL + "/items/9"})
	if task.Status != spool.StatusFailed || !strings.Contains(task.Error, "404 Not Found: no such item") {
		t.Errorf("task is %s with error %q, want failed with the 404 and its body", task.Status, task.Error)
	}
	if task.Attempt != 1 || hits.Load() != 1 {
		t.Errorf("attempts = %d, requests = %d; want 1 and 1", task.Attempt, hits.Load())
	}
}

// TestHTTPServerErrorRetried: a 5xx is retried until MaxAttempts, then the
// task ends in error.
func TestHTTPServerErrorRetried(t *testing.T) {
	t.Parallel()
	srv, hits := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "try later", http.StatusServiceUnavailable)
	})
	// The engine's AllowPrivateNetworks lets the handler reach loopback too.
	e := newEngine(t, spool.Config{AllowPrivateNetworks: true, MaxAttempts: 2}, nil)
	task := run(t, e, spool.Request{Kind: "http", URL: srv.URL})
	if task.Status != spool.StatusError || !strings.Contains(task.Error, "503") {
		t.Errorf("task is %s with error %q, want error with the 503", task.Status, task.Error)
	}
	if task.Attempt != 2 || hits.Load() != 2 {
		t.Errorf("attempts = %d, requests = %d; want 2 and 2", task.Attempt, hits.Load())
	}
}

// TestHTTPRefusedAddress: the handler dials under the engine's address
// policy, which Create applies only to a url's literal address: a redirect
// to a refused address fails the task, before anything is sent there.
func TestHTTPRefusedAddress(t *testing.T) {
	t.Parallel()
	var port string
	srv, hits := serve(t, func(w http.ResponseWriter, r *http.Request) {
		// 127.0.0.2 is loopback too, but outside the allowed 127.0.0.1/32.
		http.Redirect(w, r, "http://127.0.0.2:"+port+"/inside", http.StatusFound)
	})
	port = srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	e := newEngine(t, spool.Config{AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, MaxAttempts: 3}, nil)

	task := run(t, e, spool.Request{Kind: "http", URL: srv.URL + "/outside"})
	const refused = "refusing to connect to 127.0.0.2: loopback address"
	if task.Status != spool.StatusFailed || !strings.Contains(task.Error, refused) {
		t.Errorf("task is %s with error %q, want failed: %s", task.Status, task.Error, refused)
	}
	if task.Attempt != 1 || hits.Load() != 1 {
		t.Errorf("attempts = %d, requests = %d; want 1 and 1", task.Attempt, hits.Load())
	}
	// The same address as the url is refused by Create already.
	_, err := e.Create(t.Context(), spool.Request{Kind: "http", URL: "http://127.0.0.2:" + port + "/inside"})
	if !errors.Is(err, spool.ErrInvalidRequest) {
		t.Errorf("Create(http://127.0.0.2…) = %v, want ErrInvalidRequest", err)
	}
}

// TestHTTPRedirects: GET follows redirects; POST completes with the 3xx.
func TestHTTPRedirects(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/old":
			http.Redirect(w, r, "/new", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			io.WriteString(w, r.Method+" "+r.URL.Path)
		}
	})
	e := newHTTPEngine(t, spool.Config{})

	got := httpOutputOf(t, run(t, e, spool.Request{Kind: "http", URL: srv.URL + "/old"}))
	if got.Status != 200 || got.URL != srv.URL+"/new" || string(got.Body) != `"GET /new"` {
		t.Errorf("GET /old: %+v, want 200 from /new", got)
	}
	post := httpOutputOf(t, run(t, e, spool.Request{Kind: "http", URL: srv.URL + "/old",
		Options: map[string]any{"method": "POST", "body": "x"}}))
	if post.Status != http.StatusFound || post.Headers["location"] != "/new" || post.URL != srv.URL+"/old" {
		t.Errorf("POST /old: %+v, want the 302 to /new", post)
	}
	loop := run(t, e, spool.Request{Kind: "http", URL: srv.URL + "/loop"})
	if loop.Status != spool.StatusFailed || !strings.Contains(loop.Error, "too many redirects") {
		t.Errorf("GET /loop is %s with error %q, want failed with too many redirects", loop.Status, loop.Error)
	}
}

// TestHTTPBodyLimit: a body over Config.HTTPMaxBodySize fails the task;
// one at the limit is fine.
func TestHTTPBodyLimit(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length: the limit is found while reading
		}
		io.WriteString(w, strings.Repeat("x", len(r.URL.Path)-1))
	})
	e := newEngine(t, spool.Config{AllowNetworks: loopback}, &kinds.Config{HTTPMaxBodySize: 10})
	for _, path := range []string{"/0123456789", "/0123456789?chunked=1"} {
		if task := run(t, e, spool.Request{Kind: "http", URL: srv.URL + path}); httpOutputOf(t, task).Size != 10 {
			t.Errorf("%s: size = %d, want 10", path, httpOutputOf(t, task).Size)
		}
	}
	for _, path := range []string{"/0123456789a", "/0123456789a?chunked=1"} {
		task := run(t, e, spool.Request{Kind: "http", URL: srv.URL + path})
		if task.Status != spool.StatusFailed || !strings.Contains(task.Error, "larger than 10 bytes") ||
			!strings.Contains(task.Error, "kinds.Config.HTTPMaxBodySize") || !strings.Contains(task.Error, "spool serve and spool run have no flag") {
			t.Errorf("%s: task is %s with error %q, want failed: larger than 10 bytes, naming the Go field and that the CLI has none", path, task.Status, task.Error)
		}
	}
}

// TestHTTPTimeout: the timeout option bounds the request; a timeout is
// retried like any transient failure.
func TestHTTPTimeout(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; returns when the client gives up
	})
	e := newHTTPEngine(t, spool.Config{MaxAttempts: 1})
	task := run(t, e, spool.Request{Kind: "http", URL: srv.URL, Options: map[string]any{"timeout": 1}})
	if task.Status != spool.StatusError || !strings.Contains(task.Error, "timed out after 1s") {
		t.Errorf("task is %s with error %q, want error: timed out after 1s", task.Status, task.Error)
	}
}
