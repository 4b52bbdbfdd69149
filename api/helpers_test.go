package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
	"github.com/spoolrun/spool/kinds"
)

const testToken = "s3cret-token-for-tests"

// env is an engine behind the API on a loopback test server.
type env struct {
	t   *testing.T
	e   *spool.Engine
	srv *httptest.Server
}

// newEnv opens an engine with the built-in kinds and a "hold" kind whose
// tasks run until their context ends, and serves it.
func newEnv(t *testing.T, opts *api.Options) *env {
	t.Helper()
	return newEnvConfig(t, spool.Config{}, opts)
}

// newEnvConfig is newEnv with an engine configured by cfg.
func newEnvConfig(t *testing.T, cfg spool.Config, opts *api.Options) *env {
	t.Helper()
	ctx := context.Background()
	cfg.Path = filepath.Join(t.TempDir(), "spool.db")
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.PollInterval = 50 * time.Millisecond
	e, err := spool.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := kinds.Register(e, nil); err != nil {
		t.Fatal(err)
	}
	e.Register("hold", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		<-ctx.Done()
		return ctx.Err()
	}))
	e.Register("echo", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		job.Progress(50)
		return job.SetOutput(map[string]any{"options": job.Task.Options})
	}))
	e.Register("broken", broken{})
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if opts == nil {
		opts = &api.Options{Tokens: []api.Token{{Name: "tester", Secret: testToken}}}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv := httptest.NewServer(api.NewHandler(e, opts))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_ = e.Close(ctx)
	})
	return &env{t: t, e: e, srv: srv}
}

// do sends a request with the test token and returns the response and its
// body.
func (v *env) do(method, path string, body any, hdr ...string) (*http.Response, []byte) {
	v.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			v.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, v.srv.URL+path, rd)
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := v.srv.Client().Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return res, b
}

// decode unmarshals a response body or fails the test.
func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// pngBytes returns a w×h PNG.
func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// waitStatus polls GET /tasks/{id} until the task is terminal.
func (v *env) waitTask(id string) map[string]any {
	v.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, b := v.do("GET", "/tasks/"+id, nil)
		m := decode[map[string]any](v.t, b)
		switch m["status"] {
		case "completed", "failed", "error", "cancelled":
			return m
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("task %s still %v", id, m["status"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// broken is a handler whose Check fails: its kind is unavailable.
type broken struct{}

func (broken) Handle(context.Context, *spool.Job) error { return nil }
func (broken) Check(context.Context) error {
	return errors.New("the broken kind needs a program this machine lacks")
}

type errBody struct {
	Error struct {
		Kind, Message, Field string
		RequestID            string `json:"request_id"`
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

type apiOptions = api.Options

// apiHandler serves v's engine with the test token and options set by fn.
func apiHandler(v *env, fn func(*api.Options)) http.Handler {
	o := &api.Options{Tokens: []api.Token{{Name: "tester", Secret: testToken}}, Logger: slog.New(slog.DiscardHandler)}
	fn(o)
	return api.NewHandler(v.e, o)
}
