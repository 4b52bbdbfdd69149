package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// TestIdempotencyReplayJSON: a retried POST of the same request, in
// another JSON form (keys in another order, 10 as 10.0 or 1e1, a default
// given explicitly), returns the first task with Idempotent-Replayed and
// stores nothing.
func TestIdempotencyReplayJSON(t *testing.T) {
	v := newEnv(t, nil)
	fid := v.upload("in.png", pngBytes(t, 16, 16))["id"].(string)
	for _, c := range []struct {
		name, first, again string
	}{
		{"same body", `{"kind": "hold", "n": 1, "ref": "r"}`, `{"kind": "hold", "n": 1, "ref": "r"}`},
		{"numbers and order", `{"kind": "hold", "n": 1, "sizes": [1, 2.5], "o": {"a": 10}, "webhook_url": "https://example.com/h"}`,
			`{"webhook_url": "https://example.com/h", "o": {"a": 1e1}, "sizes": [1.0, 2.50], "n": 1.0, "kind": "hold"}`},
		{"defaults", `{"kind": "image", "file_id": "` + fid + `", "width": 8, "format": "png"}`,
			`{"format": "png", "quality": 80, "width": 8.0, "file_id": "` + fid + `", "kind": "image"}`},
		{"run_at", `{"kind": "hold", "run_at": "2100-01-01T00:00:00Z"}`, `{"run_at": "2100-01-01T01:00:00+01:00", "kind": "hold"}`},
		{"workflow", `{"kind": "workflow", "file_id": "` + fid + `", "run_at": "2100-01-01T00:00:00Z", "workflow": [
			{"kind": "image", "width": 8}, {"kind": "hold", "ref": "b", "n": 2, "next": [{"kind": "image", "height": 4}]}]}`,
			`{"workflow": [{"width": 8.0, "kind": "image", "fit": "fill"},
			{"next": [{"height": 4.0, "kind": "image"}], "n": 2e0, "ref": "b", "kind": "hold"}],
			"run_at": "2100-01-01T00:00:00Z", "file_id": "` + fid + `", "kind": "workflow"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := "key " + c.name
			res, b1 := v.do("POST", "/tasks", c.first, "Idempotency-Key", key)
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("first POST: %d %s", res.StatusCode, b1)
			}
			n, _ := v.counts()
			// The API tells a replay by the task's creation time, more
			// than 1ms before the call: a client's retry always is.
			time.Sleep(5 * time.Millisecond)
			// Once with the header, once with the body's field.
			withField := strings.Replace(c.again, "{", `{"idempotency_key": "`+key+`", `, 1)
			for _, again := range [][]string{{c.again, "Idempotency-Key", key}, {withField}} {
				res, b2 := v.do("POST", "/tasks", again[0], again[1:]...)
				t1, t2 := decode[map[string]any](t, b1), decode[map[string]any](t, b2)
				if res.StatusCode != http.StatusCreated || t1["id"] != t2["id"] {
					t.Fatalf("retry: %d %s; want the first task %s", res.StatusCode, b2, b1)
				}
				if res.Header.Get("Idempotent-Replayed") != "true" {
					t.Errorf("retry not marked Idempotent-Replayed: %s then %s", b1, b2)
				}
			}
			if got, _ := v.counts(); got != n {
				t.Errorf("%d tasks after the retries, want %d", got, n)
			}
		})
	}
}

// TestIdempotencyMismatchJSON: a used key with a different request is a
// 422 idempotency_mismatch naming the first field that differs, which
// stores nothing.
func TestIdempotencyMismatchJSON(t *testing.T) {
	v := newEnv(t, nil)
	f1 := v.upload("a.png", pngBytes(t, 16, 16))["id"].(string)
	f2 := v.upload("b.png", pngBytes(t, 16, 16))["id"].(string)
	later := `"run_at": "2100-01-01T00:00:00Z"` // nothing runs, nothing is added
	wf := func(width, kind string) string {
		return `{"kind": "workflow", "file_id": "` + f1 + `", ` + later + `, "workflow": [{"kind": "image", "width": ` +
			width + `}, {"kind": "` + kind + `"}]}`
	}
	for _, c := range []struct {
		name, first, again, field string
	}{
		{"kind", `{"kind": "hold", "n": 1}`, `{"kind": "echo", "n": 1}`, "kind"},
		{"url", `{"kind": "hold", "url": "https://example.com/a.png", ` + later + `}`,
			`{"kind": "hold", "url": "https://example.com/b.png", ` + later + `}`, "url"},
		{"file_id", `{"kind": "image", "file_id": "` + f1 + `"}`, `{"kind": "image", "file_id": "` + f2 + `"}`, "file_id"},
		{"option value", `{"kind": "hold", "n": 1}`, `{"kind": "hold", "n": 1.5}`, "n"},
		{"option left out", `{"kind": "hold", "n": 1, "m": 2}`, `{"kind": "hold", "n": 1}`, "m"},
		{"option against its default", `{"kind": "image", "file_id": "` + f1 + `"}`,
			`{"kind": "image", "file_id": "` + f1 + `", "quality": 70}`, "quality"},
		{"ref", `{"kind": "hold", "ref": "a"}`, `{"kind": "hold", "ref": "b"}`, "ref"},
		{"webhook_url", `{"kind": "hold", "webhook_url": "https://example.com/a"}`,
			`{"kind": "hold", "webhook_url": "https://example.com/b"}`, "webhook_url"},
		{"run_at", `{"kind": "hold", ` + later + `}`, `{"kind": "hold", "run_at": "2100-01-02T00:00:00Z"}`, "run_at"},
		{"workflow step option", wf("8", "hold"), wf("9", "hold"), "workflow[0].width"},
		{"workflow step kind", wf("8", "hold"), wf("8", "image"), "workflow[1].kind"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := "key " + c.name
			res, b1 := v.do("POST", "/tasks", c.first, "Idempotency-Key", key)
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("first POST: %d %s", res.StatusCode, b1)
			}
			n, _ := v.counts()
			res, b := v.do("POST", "/tasks", c.again, "Idempotency-Key", key)
			e := decode[struct{ Error map[string]any }](t, b).Error
			if res.StatusCode != http.StatusUnprocessableEntity || e["kind"] != "idempotency_mismatch" || e["field"] != c.field {
				t.Fatalf("POST with the key and another request: %d %s; want 422 idempotency_mismatch on %s",
					res.StatusCode, b, c.field)
			}
			msg, _ := e["message"].(string)
			if !strings.Contains(msg, c.field+" differs") || strings.Contains(msg, "tester") {
				t.Errorf("message %q: want the field named, and not the token's name (the key as stored)", msg)
			}
			if res.Header.Get("Idempotent-Replayed") != "" || res.Header.Get("Location") != "" {
				t.Errorf("refusal has Idempotent-Replayed %q, Location %q", res.Header.Get("Idempotent-Replayed"),
					res.Header.Get("Location"))
			}
			if got, _ := v.counts(); got != n {
				t.Errorf("%d tasks after the refusal, want %d", got, n)
			}
		})
	}
}

// TestIdempotencyKeyLength: a client's key of up to what is left of
// spool.MaxIdempotencyKeyLen beside its token's name is kept; a longer one
// is a 400 naming idempotency_key and saying how long it may be, not an
// error about a length the client never sent.
func TestIdempotencyKeyLength(t *testing.T) {
	v := newEnv(t, nil)
	room := spool.MaxIdempotencyKeyLen - len("token 6:tester:")
	ok := strings.Repeat("k", room)
	for i := range 2 {
		if res, b := v.do("POST", "/tasks", `{"kind": "echo"}`, "Idempotency-Key", ok); res.StatusCode != 201 {
			t.Fatalf("POST %d with a key of %d bytes: %d %s", i, room, res.StatusCode, b)
		}
	}
	res, b := v.do("POST", "/tasks", `{"kind": "echo"}`, "Idempotency-Key", ok+"k")
	if res.StatusCode != 400 {
		t.Fatalf("a key of %d bytes: %d %s, want 400", room+1, res.StatusCode, b)
	}
	e := decode[errBody](t, b)
	if e.Error.Field != "idempotency_key" || !strings.Contains(e.Error.Message, fmt.Sprintf("longer than %d bytes", room)) {
		t.Errorf("error %+v: want idempotency_key, longer than %d bytes", e.Error, room)
	}
}
