package spool_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

func TestValidation(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{})
	e.Register("custom", spool.HandlerFunc(nil))
	const u = "https://example.com/in.mp4"
	long := strings.Repeat("x", 129)
	tests := []struct {
		name  string
		req   spool.Request
		field string
	}{
		{"no kind", spool.Request{URL: u}, "kind"},
		{"unknown kind", spool.Request{Kind: "teleport", URL: u}, "kind"},
		{"no input", spool.Request{Kind: "image"}, "url"},
		{"url and file_id", spool.Request{Kind: "image", URL: u, FileID: "file_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A"}, "url"},
		{"relative url", spool.Request{Kind: "image", URL: "/in.mp4"}, "url"},
		{"ftp url", spool.Request{Kind: "image", URL: "ftp://example.com/in.mp4"}, "url"},
		{"file url not allowed", spool.Request{Kind: "image", URL: "file:///etc/passwd"}, "url"},
		{"loopback url", spool.Request{Kind: "image", URL: "http://127.0.0.1/x.png"}, "url"},
		{"private url", spool.Request{Kind: "image", URL: "http://10.1.2.3/x.png"}, "url"},
		{"metadata url", spool.Request{Kind: "image", URL: "http://169.254.169.254/latest"}, "url"},
		{"ipv6 loopback", spool.Request{Kind: "image", URL: "http://[::1]/x.png"}, "url"},
		{"mapped loopback", spool.Request{Kind: "image", URL: "http://[::ffff:127.0.0.1]/x.png"}, "url"},
		{"localhost url", spool.Request{Kind: "image", URL: "http://localhost:8080/x.png"}, "url"},
		{"credentials in url", spool.Request{Kind: "image", URL: "https://u:p@example.com/x.png"}, "url"},
		// Stored as JSON, a bad byte would become U+FFFD: another URL.
		{"url not UTF-8", spool.Request{Kind: "image", URL: "https://example.com/\xff.png"}, "url"},
		{"webhook not UTF-8", spool.Request{Kind: "image", URL: u, WebhookURL: "https://example.com/h\xfe"}, "webhook_url"},
		{"step url not UTF-8", spool.Request{Kind: "workflow", URL: u,
			Workflow: []spool.Step{{Kind: "http", URL: "https://example.com/\xff"}}}, "workflow[0].url"},
		{"bad file_id", spool.Request{Kind: "image", FileID: "abc"}, "file_id"},
		{"http without url", spool.Request{Kind: "http"}, "url"},
		{"http with file_id", spool.Request{Kind: "http", URL: u, FileID: "file_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A"}, "file_id"},
		{"webhook not http", spool.Request{Kind: "image", URL: u, WebhookURL: "mailto:a@b.c"}, "webhook_url"},
		{"webhook private", spool.Request{Kind: "image", URL: u, WebhookURL: "http://192.168.1.1/hook"}, "webhook_url"},
		{"webhook file", spool.Request{Kind: "image", URL: u, WebhookURL: "file:///tmp/x"}, "webhook_url"},
		{"filename dotdot", spool.Request{Kind: "image", URL: u, Filename: "../x.png"}, "filename"},
		{"filename slash", spool.Request{Kind: "image", URL: u, Filename: "a/x.png"}, "filename"},
		{"filename backslash", spool.Request{Kind: "image", URL: u, Filename: `a\x.png`}, "filename"},
		{"filename NUL", spool.Request{Kind: "image", URL: u, Filename: "x\x00.png"}, "filename"},
		{"filename newline", spool.Request{Kind: "image", URL: u, Filename: "x\n.png"}, "filename"},
		{"filename CR", spool.Request{Kind: "image", URL: u, Filename: "x\r.png"}, "filename"},
		{"filename tab", spool.Request{Kind: "image", URL: u, Filename: "x\t.png"}, "filename"},
		{"filename escape", spool.Request{Kind: "image", URL: u, Filename: "\x1b[31mx.png"}, "filename"},
		{"filename DEL", spool.Request{Kind: "image", URL: u, Filename: "x\x7f.png"}, "filename"},
		{"filename line separator", spool.Request{Kind: "image", URL: u, Filename: "x\u2028.png"}, "filename"},
		{"filename next line (C1)", spool.Request{Kind: "image", URL: u, Filename: "x\u0085.png"}, "filename"},
		{"filename paragraph separator", spool.Request{Kind: "image", URL: u, Filename: "x\u2029.png"}, "filename"},
		{"folder newline", spool.Request{Kind: "image", URL: u, Folder: "a/b\nc"}, "folder"},
		{"folder line separator", spool.Request{Kind: "image", URL: u, Folder: "a\u2028/b"}, "folder"},
		{"http Host header", spool.Request{Kind: "http", URL: u, Options: map[string]any{"headers": map[string]any{"Host": "intranet"}}}, "headers"},
		{"http Connection header", spool.Request{Kind: "http", URL: u, Options: map[string]any{"headers": map[string]any{"connection": "close"}}}, "headers"},
		{"folder absolute", spool.Request{Kind: "image", URL: u, Folder: "/etc"}, "folder"},
		{"folder escapes", spool.Request{Kind: "image", URL: u, Folder: "a/../../b"}, "folder"},
		{"ref too long", spool.Request{Kind: "image", URL: u, Ref: long}, "ref"},
		{"idempotency key too long", spool.Request{Kind: "image", URL: u, IdempotencyKey: strings.Repeat("k", 300)}, "idempotency_key"},
		{"unknown option", spool.Request{Kind: "image", URL: u, Options: map[string]any{"colour": "red"}}, "colour"},
		{"option wrong type", spool.Request{Kind: "image", URL: u, Options: map[string]any{"width": "wide"}}, "width"},
		{"option out of range", spool.Request{Kind: "image", URL: u, Options: map[string]any{"width": 100000}}, "width"},
		{"option bad enum", spool.Request{Kind: "image", URL: u, Options: map[string]any{"format": "bmp"}}, "format"},
		{"request field as option", spool.Request{Kind: "custom", Options: map[string]any{"kind": "x"}}, "kind"},
		{"options too large", spool.Request{Kind: "custom", Options: map[string]any{"blob": strings.Repeat("x", 70<<10)}}, "options"},
		{"option with an empty name", spool.Request{Kind: "custom", Options: map[string]any{"": 1}}, "options"},
		{"options not JSON", spool.Request{Kind: "custom", Options: map[string]any{"f": func() {}}}, "f"},
		{"workflow without steps", spool.Request{Kind: "workflow", URL: u}, "workflow"},
		{"workflow on another kind", spool.Request{Kind: "image", URL: u, Workflow: []spool.Step{{Kind: "image"}}}, "workflow"},
		{"workflow step unknown kind", spool.Request{Kind: "workflow", URL: u, Workflow: []spool.Step{{Kind: "teleport"}}}, "workflow[0].kind"},
		{"workflow step bad option", spool.Request{Kind: "workflow", URL: u, Workflow: []spool.Step{{Kind: "image", Next: []spool.Step{{Kind: "video", Options: map[string]any{"fps": 500}}}}}}, "workflow[0].next[0].fps"},
		{"run_at beyond 2200", spool.Request{Kind: "custom", RunAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, "run_at"},
		{"nested workflow", spool.Request{Kind: "workflow", URL: u, Workflow: []spool.Step{{Kind: "workflow"}}}, "workflow[0].kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Create(ctx, tt.req)
			var ve *spool.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, spool.ErrInvalidRequest) {
				t.Fatalf("Create = %v, want a *ValidationError", err)
			}
			if ve.Field != tt.field {
				t.Errorf("field %q (%v), want %q", ve.Field, err, tt.field)
			}
			if ve.Reason == "" {
				t.Error("empty reason")
			}
			// An address refused by the network policy names both ways to
			// allow it: the library's and the binary's.
			if strings.Contains(tt.name, "private") || strings.Contains(tt.name, "loopback") || strings.Contains(tt.name, "localhost") {
				if !strings.Contains(ve.Reason, "AllowPrivateNetworks") || !strings.Contains(ve.Reason, "--allow-private-networks") {
					t.Errorf("reason %q names no way to allow the address", ve.Reason)
				}
			}
		})
	}
	st, err := e.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st.ByStatus); n != 0 {
		t.Errorf("rejected requests stored tasks: %v", st.ByStatus)
	}
	if len(tests) < 25 {
		t.Errorf("only %d bad requests", len(tests))
	}
}

// TestCreateFileValidation checks that CreateFile refuses what Create
// refuses in a filename, folder and ref, and counts a ref's length in
// characters as Create does.
func TestCreateFileValidation(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{})
	tests := []struct {
		name  string
		p     spool.FileParams
		field string // "" when accepted
	}{
		{"plain", spool.FileParams{Filename: "a.txt", Folder: "x/y", Ref: "r"}, ""},
		{"unicode name", spool.FileParams{Filename: "été ☃.txt", Folder: "dossier/é"}, ""},
		{"filename newline", spool.FileParams{Filename: "a\n.txt"}, "filename"},
		{"filename CRLF", spool.FileParams{Filename: "a\r\nX-Evil: 1.txt"}, "filename"},
		{"filename tab", spool.FileParams{Filename: "a\tb.txt"}, "filename"},
		{"filename DEL", spool.FileParams{Filename: "a\x7f.txt"}, "filename"},
		{"filename unit separator", spool.FileParams{Filename: "a\x1f.txt"}, "filename"},
		{"filename line separator", spool.FileParams{Filename: "a\u2028.txt"}, "filename"},
		{"filename paragraph separator", spool.FileParams{Filename: "a\u2029.txt"}, "filename"},
		{"folder newline", spool.FileParams{Filename: "a.txt", Folder: "x\ny"}, "folder"},
		{"folder tab", spool.FileParams{Filename: "a.txt", Folder: "x/\ty"}, "folder"},
		{"ref of 128 characters in 256 bytes", spool.FileParams{Filename: "a.txt", Ref: strings.Repeat("é", 128)}, ""},
		{"ref of 129 characters", spool.FileParams{Filename: "a.txt", Ref: strings.Repeat("é", 129)}, "ref"},
		{"ref of 129 ASCII characters", spool.FileParams{Filename: "a.txt", Ref: strings.Repeat("r", 129)}, "ref"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			f, err := e.CreateFile(ctx, strings.NewReader("hello"), &p)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("CreateFile = %v, want a file", err)
				}
				if f.Ref != tt.p.Ref || f.Filename != tt.p.Filename {
					t.Errorf("file %q ref %q, want %q ref %q", f.Filename, f.Ref, tt.p.Filename, tt.p.Ref)
				}
				return
			}
			var ve *spool.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("CreateFile = %v, want a *ValidationError on %s", err, tt.field)
			}
		})
	}
	// A task's ref is counted the same way.
	e.Register("x", spool.HandlerFunc(nil))
	if _, err := e.Create(ctx, spool.Request{Kind: "x", Ref: strings.Repeat("é", 128)}); err != nil {
		t.Errorf("Create with a ref of 128 characters in 256 bytes: %v", err)
	}
}

func TestCreateManyAllOrNothing(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{})
	e.Register("x", spool.HandlerFunc(nil))
	reqs := []spool.Request{{Kind: "x"}, {Kind: "x"}, {Kind: "x", Ref: strings.Repeat("r", 200)}, {Kind: "x"}}
	_, err := e.CreateMany(ctx, reqs)
	var ve *spool.ValidationError
	if !errors.As(err, &ve) || ve.Field != "requests[2].ref" {
		t.Fatalf("CreateMany = %v, want a ValidationError on requests[2].ref", err)
	}
	if page, _ := e.List(ctx, nil); page.Total != 0 || len(page.Tasks) != 0 {
		t.Errorf("CreateMany with a bad request stored %d tasks", page.Total)
	}
	tasks, err := e.CreateMany(ctx, reqs[:2])
	if err != nil || len(tasks) != 2 {
		t.Fatalf("CreateMany = %d, %v", len(tasks), err)
	}
}

func TestAllowedURLs(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{AllowLocalFiles: true, AllowPrivateNetworks: true})
	for _, u := range []string{"file:///tmp/in.mp4", "http://127.0.0.1:8080/in.mp4", "http://localhost/x.png"} {
		if _, err := e.Create(ctx, spool.Request{Kind: "image", URL: u}); err != nil {
			t.Errorf("Create(%s) with local files and private networks allowed: %v", u, err)
		}
	}
}

func TestRequestJSON(t *testing.T) {
	body := `{"kind": "video", "url": "https://example.com/a.mp4", "width": 640, "codec": "h264",
		"ref": "small", "webhook_url": "https://example.com/hook", "idempotency_key": "k",
		"run_at": "2030-01-01T00:00:00Z", "layers": [{"text": "hi"}]}`
	var r spool.Request
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "video" || r.URL == "" || r.Ref != "small" || r.WebhookURL == "" || r.IdempotencyKey != "k" ||
		!r.RunAt.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("decoded %+v", r)
	}
	if r.Options["width"] != json.Number("640") || r.Options["codec"] != "h264" || len(r.Options) != 3 {
		t.Errorf("options %v, want width, codec and layers only", r.Options)
	}
	b, _ := json.Marshal(r)
	var again spool.Request
	if err := json.Unmarshal(b, &again); err != nil || again.Kind != r.Kind || len(again.Options) != 3 {
		t.Errorf("re-decoded %+v, %v", again, err)
	}
	for body, field := range map[string]string{
		`{"kind": 5}`:             "kind",
		`{"kind": "x", "url": 1}`: "url",
		`{"run_at": "tomorrow"}`:  "run_at",
		`[1, 2]`:                  "body",
		`{"workflow": {"a": 1}}`:  "workflow",
	} {
		var r spool.Request
		err := json.Unmarshal([]byte(body), &r)
		var ve *spool.ValidationError
		if !errors.As(err, &ve) || ve.Field != field {
			t.Errorf("decode %s = %v, want a ValidationError on %s", body, err, field)
		}
	}
	// Not encoding/json's words, which name Go types.
	for body, want := range map[string]string{`[]`: "not an array", `"x"`: "not a string", `3`: "not a number", `true`: "not a boolean"} {
		var r spool.Request
		if err := json.Unmarshal([]byte(body), &r); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Go value") {
			t.Errorf("decode %s = %v, want it to say %q", body, err, want)
		}
	}
}

// FuzzRequest decodes and validates arbitrary create bodies: no panic, and
// every rejection is a ValidationError naming a field.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"file_id": "file_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A", "kind": "image", "width": 320, "format": "png", "ref": "thumbnail"}`,
		`{"kind": "video", "url": "https://example.com/a.mp4", "width": "50%", "fps": 30}`,
		`{"kind": "workflow", "url": "https://example.com/a.mp4", "workflow": [{"kind": "image", "next": [{"kind": "conditions", "conditions": [{"prop": "kind", "value": "video"}]}]}]}`,
		`{"kind": "http", "url": "http://10.0.0.1/", "method": "post", "headers": {"a": "b"}}`,
		`{"kind": "custom", "run_at": "2030-01-01T00:00:00Z", "idempotency_key": "k"}`,
		`{"kind": "image", "url": "file:///etc/passwd", "folder": "../x"}`,
		`{}`, `null`, `[]`, `{"kind": null}`,
	} {
		f.Add(s)
	}
	e, err := openFuzzEngine()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close(ctxBackground) })
	f.Fuzz(func(t *testing.T, body string) {
		var r spool.Request
		// UnmarshalJSON directly: json.Unmarshal would reject bad syntax
		// before calling it, with encoding/json's own error.
		if err := r.UnmarshalJSON([]byte(body)); err != nil {
			var ve *spool.ValidationError
			if !errors.As(err, &ve) || ve.Field == "" {
				t.Fatalf("decode error %v is not a ValidationError with a field", err)
			}
			return
		}
		created, err := e.Create(ctxBackground, r)
		if err == nil {
			// What Create accepted reads back, and as Create returned it.
			got, err := e.Get(ctxBackground, created.ID)
			if err != nil {
				t.Fatalf("Get of a created task: %v", err)
			}
			// (No options are nil or empty alike: both encode as {}.)
			if (len(got.Options) > 0 || len(created.Options) > 0) && !reflect.DeepEqual(got.Options, created.Options) {
				t.Fatalf("options read back %#v, Create returned %#v", got.Options, created.Options)
			}
			return
		}
		var ve *spool.ValidationError
		if !errors.As(err, &ve) || ve.Field == "" || ve.Reason == "" {
			t.Fatalf("Create error %v is not a ValidationError with a field", err)
		}
	})
}
