package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
)

// TestCreatedBy: created_by is the token's name, whatever the body says.
func TestCreatedBy(t *testing.T) {
	v := newEnv(t, nil)
	res, b := v.do("POST", "/tasks", `{"kind": "echo", "created_by": "mallory"}`)
	task := decode[map[string]any](t, b)
	if res.StatusCode != 201 || task["created_by"] != "tester" {
		t.Fatalf("created_by from the body: %d %s", res.StatusCode, b)
	}
}

// TestCancelDelete: cancel an unfinished task, then delete it.
func TestCancelDelete(t *testing.T) {
	v := newEnv(t, nil)
	_, b := v.do("POST", "/tasks", `{"kind": "hold"}`)
	id := decode[map[string]any](t, b)["id"].(string)
	res, b := v.do("POST", "/tasks/"+id+"/cancel", nil)
	if task := decode[map[string]any](t, b); res.StatusCode != 200 || task["status"] != "cancelled" {
		t.Fatalf("cancel: %d %s", res.StatusCode, b)
	}
	if res, b = v.do("DELETE", "/tasks/"+id, nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.StatusCode, b)
	}
	if res, _ = v.do("GET", "/tasks/"+id, nil); res.StatusCode != 404 {
		t.Errorf("get after delete: %d", res.StatusCode)
	}
}

// TestTasksConfig: every kind with its options from the specs, and why
// this engine cannot run some.
func TestTasksConfig(t *testing.T) {
	v := newEnv(t, nil)
	res, b := v.do("GET", "/tasks-config", nil, "Accept-Version", "latest")
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
	kinds := map[string]map[string]any{}
	for _, k := range decode[[]map[string]any](t, b) {
		kinds[k["kind"].(string)] = k
	}
	img := kinds["image"]
	if img == nil || img["available"] != true || img["input"] != "required" || img["description"] == "" {
		t.Fatalf("image: %v", img)
	}
	var width map[string]any
	for _, o := range img["options"].([]any) {
		if o := o.(map[string]any); o["name"] == "width" {
			width = o
		}
	}
	if width == nil || width["type"] != "int" || width["min"] != 1.0 || width["max"] != 8192.0 || width["description"] == "" {
		t.Errorf("image width: %v", width)
	}
	if br := kinds["broken"]; br == nil || br["available"] != false || !strings.Contains(br["reason"].(string), "lacks") {
		t.Errorf("broken: %v", br)
	}
	for _, k := range spool.BuiltinKinds() {
		if kinds[k] == nil {
			t.Errorf("kind %s missing", k)
		}
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsAndInternalErrors: one log line per request with its request
// id and no token; a store failure is a 500 that leaks nothing but the
// request id, under which the log has the cause.
func TestLogsAndInternalErrors(t *testing.T) {
	ctx := context.Background()
	store, err := spool.OpenSQLite(ctx, filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := spool.Open(ctx, spool.Config{Store: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	var logs syncBuffer
	srv := httptest.NewServer(api.NewHandler(e, &api.Options{Tokens: []api.Token{{Name: "tester", Secret: testToken}},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
	defer srv.Close()
	v := &env{t: t, e: e, srv: srv}

	res, _ := v.do("GET", "/tasks?ref=x", nil)
	id := res.Header.Get("X-Request-Id")
	if res.StatusCode != 200 || id == "" || !strings.Contains(logs.String(), "request_id="+id) ||
		!strings.Contains(logs.String(), "status=200") || !strings.Contains(logs.String(), "user=tester") {
		t.Fatalf("log after a list: %s", logs.String())
	}
	v.do("GET", "/tasks", nil, "Authorization", "Bearer wrong-"+testToken)
	if strings.Contains(logs.String(), testToken) {
		t.Fatalf("a token shows in the log: %s", logs.String())
	}

	store.Close() // behind the engine's back: every read fails
	res, b := v.do("GET", "/tasks/task_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A", nil)
	eb := decode[errBody](t, b)
	if res.StatusCode != 500 || eb.Error.Kind != "internal_error" || eb.Error.RequestID != res.Header.Get("X-Request-Id") ||
		strings.Contains(string(b), "sql") || strings.Contains(string(b), "closed") {
		t.Fatalf("internal error: %d %s", res.StatusCode, b)
	}
	if !strings.Contains(logs.String(), "api: internal error") || !strings.Contains(logs.String(), eb.Error.RequestID) {
		t.Errorf("the log lacks the internal error: %s", logs.String())
	}
}

// TestAllowNoAuth: without a token, requests pass and record no
// creator; a wrong token is still refused.
func TestAllowNoAuth(t *testing.T) {
	var logs syncBuffer
	v := newEnv(t, &api.Options{AllowNoAuth: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	res, b := v.do("POST", "/tasks", `{"kind": "echo"}`, "Authorization", "")
	if task := decode[map[string]any](t, b); res.StatusCode != 201 || task["created_by"] != nil {
		t.Fatalf("no auth: %d %s", res.StatusCode, b)
	}
	if res, _ := v.do("GET", "/tasks", nil, "Authorization", "Bearer nope"); res.StatusCode != 401 {
		t.Errorf("wrong token with AllowNoAuth: %d", res.StatusCode)
	}
	if !strings.Contains(logs.String(), "AUTHENTICATION IS OFF") {
		t.Errorf("no loud log line: %s", logs.String())
	}
}

// TestTokensAndBaseURL: each token's name is its tasks' created_by, and
// BaseURL roots Location and file urls under a mount prefix.
func TestTokensAndBaseURL(t *testing.T) {
	v := newEnv(t, &api.Options{BaseURL: "https://media.example.com/api/",
		Tokens: []api.Token{{Name: "first", Secret: "other-secret"}, {Name: "tester", Secret: testToken}}})
	f := v.upload("a.png", pngBytes(t, 8, 8))
	if f["url"] != "https://media.example.com/api/files/"+f["id"].(string)+"/content" || f["created_by"] != "tester" {
		t.Errorf("file: %v", f)
	}
	res, b := v.do("POST", "/tasks", `{"kind": "echo"}`, "Authorization", "Bearer other-secret")
	task := decode[map[string]any](t, b)
	if task["created_by"] != "first" || res.Header.Get("Location") != "https://media.example.com/api/tasks/"+task["id"].(string) {
		t.Errorf("second token: %s, Location %q", b, res.Header.Get("Location"))
	}
}

// TestConcurrentCreates: the handler under concurrent use (run with -race).
func TestConcurrentCreates(t *testing.T) {
	v := newEnv(t, nil)
	var wg sync.WaitGroup
	ids := make(chan string, 80)
	for range 8 {
		wg.Go(func() {
			for range 10 {
				req, _ := http.NewRequest("POST", v.srv.URL+"/tasks", strings.NewReader(`{"kind": "echo"}`))
				req.Header.Set("Authorization", "Bearer "+testToken)
				res, err := v.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var task struct{ ID string }
				_ = json.NewDecoder(res.Body).Decode(&task)
				res.Body.Close()
				ids <- task.ID
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 80 || seen[""] {
		t.Errorf("%d distinct tasks, want 80", len(seen))
	}
}

// TestMetricsRoute: Options.Metrics is served at GET /metrics behind the
// tokens, and absent otherwise.
func TestMetricsRoute(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "spool_up 1\n") })
	v := newEnv(t, &api.Options{Tokens: []api.Token{{Name: "tester", Secret: testToken}}, Metrics: metrics})
	if res, b := v.do("GET", "/metrics", nil); res.StatusCode != 200 || string(b) != "spool_up 1\n" {
		t.Errorf("GET /metrics: %d %s", res.StatusCode, b)
	}
	if res, _ := v.do("GET", "/metrics", nil, "Authorization", ""); res.StatusCode != 401 {
		t.Errorf("GET /metrics without a token: %d", res.StatusCode)
	}
	plain := newEnv(t, nil)
	if res, _ := plain.do("GET", "/metrics", nil); res.StatusCode != 404 {
		t.Errorf("GET /metrics with no Metrics handler: %d", res.StatusCode)
	}
}
