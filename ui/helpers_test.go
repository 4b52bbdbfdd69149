package ui_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
	"github.com/spoolrun/spool/kinds"
	"github.com/spoolrun/spool/ui"
)

const testToken = "ui-test-token-s3cret"

// env is an engine with the dashboard (at /ui/) and the API (at /) on a
// loopback test server.
type env struct {
	t   *testing.T
	e   *spool.Engine
	srv *httptest.Server
	c   *http.Client // has a cookie jar; does not follow redirects
}

// newEnv opens an engine with the built-in kinds, a "slow" kind whose
// tasks run until cancelled, reporting progress, and "echo", "subs" and
// "chaps" kinds, and serves it. configure may change the engine's Config.
func newEnv(t *testing.T, opts *ui.Options, configure ...func(*spool.Config)) *env {
	t.Helper()
	ctx := context.Background()
	cfg := spool.Config{Path: filepath.Join(t.TempDir(), "spool.db"),
		Logger: slog.New(slog.DiscardHandler), PollInterval: 50 * time.Millisecond}
	for _, f := range configure {
		f(&cfg)
	}
	e, err := spool.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := kinds.Register(e, nil); err != nil {
		t.Fatal(err)
	}
	e.Register("slow", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		for pct := 1; ; pct = min(pct+1, 99) {
			job.Progress(pct)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	e.Register("echo", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		return job.SetOutput(map[string]any{"options": job.Task.Options})
	}))
	// subs makes a WebVTT subtitles track for its input, as the
	// subtitles kind does.
	e.Register("subs", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		_, err := job.CreateFile(ctx, strings.NewReader("WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n"),
			&spool.File{Object: "track", Kind: "subtitles", Type: "text/vtt", Language: "en", Filename: "subs.vtt"})
		return err
	}))
	e.Register("chaps", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		return job.SetOutput(map[string]any{"chapters": []any{
			map[string]any{"index": 0, "start": 0, "end": 61.5, "title": "Opening"},
			map[string]any{"index": 1, "start": 61.5, "end": 125, "title": "The middle part"}}})
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tokens := []api.Token{{Name: "tester", Secret: testToken}}
	if opts == nil {
		opts = &ui.Options{Tokens: tokens}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui.NewHandler(e, opts))
	mux.Handle("/", api.NewHandler(e, &api.Options{Tokens: tokens, Logger: slog.New(slog.DiscardHandler)}))
	srv := httptest.NewServer(mux)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return &env{t: t, e: e, srv: srv, c: c}
}

// get fetches a path of the server and returns the response and body.
func (v *env) get(path string, hdr ...string) (*http.Response, string) {
	v.t.Helper()
	req, err := http.NewRequest("GET", v.srv.URL+path, nil)
	if err != nil {
		v.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return v.send(req)
}

// post sends a form as a browser of the same origin would.
func (v *env) post(path string, form url.Values, hdr ...string) (*http.Response, string) {
	v.t.Helper()
	req, err := http.NewRequest("POST", v.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return v.send(req)
}

func (v *env) send(req *http.Request) (*http.Response, string) {
	v.t.Helper()
	res, err := v.c.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return res, string(b)
}

// login logs the client in and returns the CSRF token of its session.
func (v *env) login() string {
	v.t.Helper()
	res, _ := v.post("/ui/login", url.Values{"token": {testToken}})
	if res.StatusCode != http.StatusSeeOther {
		v.t.Fatalf("login: status %d", res.StatusCode)
	}
	_, body := v.get("/ui/")
	return csrfOf(v.t, body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// create creates a task directly on the engine.
func (v *env) create(req spool.Request) *spool.Task {
	v.t.Helper()
	task, err := v.e.Create(context.Background(), req)
	if err != nil {
		v.t.Fatal(err)
	}
	return task
}

// wait waits for a task to finish.
func (v *env) wait(id string) *spool.Task {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	task, err := v.e.Wait(ctx, id)
	if err != nil {
		v.t.Fatal(err)
	}
	return task
}

// waitStatus polls until the task has status s.
func (v *env) waitStatus(id string, s spool.Status) {
	v.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		task, err := v.e.Get(context.Background(), id)
		if err != nil {
			v.t.Fatal(err)
		}
		if task.Status == s {
			return
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("task %s is %s, not %s", id, task.Status, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pngBytes makes a w×h PNG.
func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 160, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// upload stores a PNG as a file.
func (v *env) upload(w, h int) *spool.File {
	v.t.Helper()
	f, err := v.e.CreateFile(context.Background(), bytes.NewReader(pngBytes(v.t, w, h)), &spool.FileParams{Filename: "in.png"})
	if err != nil {
		v.t.Fatal(err)
	}
	return f
}
