package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
)

// counts returns how many tasks and files the engine has stored.
func (v *env) counts() (tasks, files int) {
	v.t.Helper()
	ctx := context.Background()
	st, err := v.e.Stats(ctx)
	if err != nil {
		v.t.Fatal(err)
	}
	for _, n := range st.ByStatus {
		tasks += n
	}
	fs, err := v.e.ListFiles(ctx, &spool.FileListParams{Limit: 100})
	if err != nil {
		v.t.Fatal(err)
	}
	return tasks, len(fs)
}

// TestBadRequests is acceptance 2: each bad request gets its status,
// error kind and field, and stores nothing.
func TestBadRequests(t *testing.T) {
	v := newEnv(t, nil)
	ctx := context.Background()
	done, err := v.e.Create(ctx, spool.Request{Kind: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.Wait(ctx, done.ID); err != nil {
		t.Fatal(err)
	}
	held, err := v.e.Create(ctx, spool.Request{Kind: "hold"})
	if err != nil {
		t.Fatal(err)
	}
	fid := v.upload("a.png", pngBytes(t, 8, 8))["id"].(string)
	missingFile := "file_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A"
	url := `"url": "https://example.com/a.png"`
	huge := `{"kind": "echo", "pad": "` + strings.Repeat("x", 1<<20) + `"}`

	cases := []struct {
		name         string
		method, path string
		body         string
		hdr          []string
		status       int
		kind, field  string
	}{
		{"no kind", "POST", "/tasks", `{` + url + `}`, nil, 400, "request_invalid", "kind"},
		{"kind not a string", "POST", "/tasks", `{"kind": 5, ` + url + `}`, nil, 400, "request_invalid", "kind"},
		{"unknown kind", "POST", "/tasks", `{"kind": "teleport", ` + url + `}`, nil, 400, "request_invalid", "kind"},
		{"kind unavailable", "POST", "/tasks", `{"kind": "broken"}`, nil, 422, "kind_unavailable", "kind"},
		{"url and file_id", "POST", "/tasks", `{"kind": "image", ` + url + `, "file_id": "` + fid + `"}`, nil, 400, "request_invalid", "url"},
		{"no input", "POST", "/tasks", `{"kind": "image", "width": 10}`, nil, 400, "request_invalid", "url"},
		{"url scheme", "POST", "/tasks", `{"kind": "image", "url": "ftp://example.com/a.png"}`, nil, 400, "request_invalid", "url"},
		{"url relative", "POST", "/tasks", `{"kind": "image", "url": "a.png"}`, nil, 400, "request_invalid", "url"},
		{"url private", "POST", "/tasks", `{"kind": "image", "url": "http://127.0.0.1/a.png"}`, nil, 400, "request_invalid", "url"},
		{"file_id malformed", "POST", "/tasks", `{"kind": "image", "file_id": "nope"}`, nil, 400, "request_invalid", "file_id"},
		{"file_id unknown", "POST", "/tasks", `{"kind": "image", "file_id": "` + missingFile + `"}`, nil, 400, "request_invalid", "file_id"},
		{"option type", "POST", "/tasks", `{"kind": "image", ` + url + `, "width": "big"}`, nil, 400, "request_invalid", "width"},
		{"option range", "POST", "/tasks", `{"kind": "image", ` + url + `, "width": 90000}`, nil, 400, "request_invalid", "width"},
		{"option enum", "POST", "/tasks", `{"kind": "image", ` + url + `, "format": "bmp"}`, nil, 400, "request_invalid", "format"},
		{"unknown field", "POST", "/tasks", `{"kind": "image", ` + url + `, "colour": "red"}`, nil, 400, "request_invalid", "colour"},
		{"workflow on image", "POST", "/tasks", `{"kind": "image", ` + url + `, "workflow": [{"kind": "image"}]}`, nil, 400, "request_invalid", "workflow"},
		{"workflow step", "POST", "/tasks", `{"kind": "workflow", ` + url + `, "workflow": [{"kind": "image", "width": -1}]}`, nil, 400, "request_invalid", "workflow[0].width"},
		{"run_at", "POST", "/tasks", `{"kind": "echo", "run_at": "tomorrow"}`, nil, 400, "request_invalid", "run_at"},
		{"ref too long", "POST", "/tasks", `{"kind": "echo", "ref": "` + strings.Repeat("r", 200) + `"}`, nil, 400, "request_invalid", "ref"},
		{"filename slash", "POST", "/tasks", `{"kind": "image", ` + url + `, "filename": "a/b.png"}`, nil, 400, "request_invalid", "filename"},
		{"webhook_url", "POST", "/tasks", `{"kind": "echo", "webhook_url": "not a url"}`, nil, 400, "request_invalid", "webhook_url"},
		{"idempotency mismatch", "POST", "/tasks", `{"kind": "echo", "idempotency_key": "a"}`, []string{"Idempotency-Key", "b"}, 400, "request_invalid", "idempotency_key"},
		{"bad JSON", "POST", "/tasks", `{"kind": "echo",` + "\n" + ` "width": }`, nil, 400, "request_invalid", "body"},
		{"JSON array", "POST", "/tasks", `[{"kind": "echo"}]`, nil, 400, "request_invalid", "body"},
		{"JSON null", "POST", "/tasks", `null`, nil, 400, "request_invalid", "body"},
		{"empty body", "POST", "/tasks", ``, nil, 400, "request_invalid", "body"},
		{"trailing data", "POST", "/tasks", `{"kind": "echo"} {}`, nil, 400, "request_invalid", "body"},
		{"huge body", "POST", "/tasks", huge, nil, 413, "request_too_large", ""},
		{"content type", "POST", "/tasks", `{"kind": "echo"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "Content-Type"},
		{"form content type", "POST", "/tasks", `kind=echo`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", "Content-Type"},
		{"Accept-Version", "POST", "/tasks", `{"kind": "echo"}`, []string{"Accept-Version", "2024-01-01"}, 400, "request_invalid", "Accept-Version"},
		{"no token", "POST", "/tasks", `{"kind": "echo"}`, []string{"Authorization", ""}, 401, "token_missing", ""},
		{"wrong token", "POST", "/tasks", `{"kind": "echo"}`, []string{"Authorization", "Bearer " + testToken + "x"}, 401, "token_invalid", ""},
		{"not bearer", "POST", "/tasks", `{"kind": "echo"}`, []string{"Authorization", "Basic " + testToken}, 401, "token_invalid", ""},
		{"unknown task", "GET", "/tasks/task_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A", "", nil, 404, "task_not_found", ""},
		{"unknown task cancel", "POST", "/tasks/task_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A/cancel", "", nil, 404, "task_not_found", ""},
		{"cancel finished", "POST", "/tasks/" + done.ID + "/cancel", "", nil, 409, "invalid_transition", ""},
		{"delete unfinished", "DELETE", "/tasks/" + held.ID, "", nil, 409, "invalid_transition", ""},
		{"unknown file", "GET", "/files/" + missingFile, "", nil, 404, "file_not_found", ""},
		{"unknown file content", "GET", "/files/" + missingFile + "/content", "", nil, 404, "file_not_found", ""},
		{"page and after", "GET", "/tasks?page=2&after=" + done.ID, "", nil, 400, "request_invalid", "after"},
		{"limit range", "GET", "/tasks?limit=500", "", nil, 400, "request_invalid", "limit"},
		{"limit zero", "GET", "/tasks?limit=0", "", nil, 400, "request_invalid", "limit"},
		{"page not a number", "GET", "/tasks?page=two", "", nil, 400, "request_invalid", "page"},
		{"status filter", "GET", "/tasks?status=done", "", nil, 400, "request_invalid", "status"},
		{"events cursor", "GET", "/events?after=nope", "", nil, 400, "request_invalid", "after"},
		{"upload without file", "POST", "/files", "--XX\r\nContent-Disposition: form-data; name=\"ref\"\r\n\r\nr1\r\n--XX--\r\n",
			[]string{"Content-Type", "multipart/form-data; boundary=XX"}, 400, "request_invalid", "file"},
		{"upload empty", "POST", "/files?filename=x.png", "", []string{"Content-Type", "image/png"}, 400, "request_invalid", "body"},
		{"upload empty form file", "POST", "/files", "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n\r\n--XX--\r\n",
			[]string{"Content-Type", "multipart/form-data; boundary=XX"}, 400, "request_invalid", "file"},
		{"upload bad name", "POST", "/files?filename=../x.png", string(pngBytes(t, 4, 4)), []string{"Content-Type", "image/png"}, 400, "request_invalid", "filename"},
		{"wrong method", "PUT", "/tasks", `{"kind": "echo"}`, nil, 405, "method_not_allowed", ""},
		{"unknown route", "GET", "/jobs", "", nil, 404, "not_found", ""},
	}
	if len(cases) < 25 {
		t.Fatalf("only %d cases", len(cases))
	}
	tasks0, files0 := v.counts()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.body != "" || c.method == "POST" {
				body = c.body
			}
			res, b := v.do(c.method, c.path, body, c.hdr...)
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, c.status, b)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			e := decode[errBody](t, b).Error
			if e.Kind != c.kind || e.Field != c.field || e.Message == "" {
				t.Errorf("error %+v, want kind %s field %q (%s)", e, c.kind, c.field, b)
			}
			if e.RequestID == "" || res.Header.Get("X-Request-Id") != e.RequestID {
				t.Errorf("no X-Request-Id")
			}
			if strings.Contains(string(b), testToken) {
				t.Errorf("the token shows in the error: %s", b)
			}
			if c.status == 405 && res.Header.Get("Allow") != "GET, HEAD, POST" {
				t.Errorf("Allow = %q", res.Header.Get("Allow"))
			}
			if tasks, files := v.counts(); tasks != tasks0 || files != files0 {
				t.Errorf("stored something: %d tasks (was %d), %d files (was %d)", tasks, tasks0, files, files0)
			}
		})
	}
}
