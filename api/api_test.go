package api_test

import (
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/spoolrun/spool/api"
)

// upload posts a PNG as a raw body and returns the file object.
func (v *env) upload(name string, body []byte) map[string]any {
	v.t.Helper()
	res, b := v.do("POST", "/files?filename="+name+"&folder=in", body, "Content-Type", "image/png")
	if res.StatusCode != http.StatusCreated {
		v.t.Fatalf("upload: %d %s", res.StatusCode, b)
	}
	return decode[map[string]any](v.t, b)
}

// TestCreateSeedExample is acceptance 1: the seed's create call answers
// 201, the task object of the hosted API and a Location, which GET
// serves the same.
func TestCreateSeedExample(t *testing.T) {
	v := newEnv(t, nil)
	f := v.upload("in.png", pngBytes(t, 64, 48))
	body := `{"file_id": "` + f["id"].(string) + `", "kind": "image", "width": 32, "format": "png", "ref": "thumbnail"}`
	res, b := v.do("POST", "/tasks", body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", res.StatusCode, b)
	}
	task := decode[map[string]any](t, b)
	id, _ := task["id"].(string)
	if !strings.HasPrefix(id, "task_") || task["object"] != "task" || task["kind"] != "image" {
		t.Fatalf("create returned %s", b)
	}
	if loc := res.Header.Get("Location"); loc != v.srv.URL+"/tasks/"+id {
		t.Errorf("Location = %q", loc)
	}
	for _, k := range []string{"id", "object", "kind", "input", "options", "output", "status", "progress",
		"error", "created_by", "created", "updated", "parent_id", "workflow", "results"} {
		if _, ok := task[k]; !ok {
			t.Errorf("task has no %q: %s", k, b)
		}
	}
	opts := task["options"].(map[string]any)
	if opts["width"] != 32.0 || opts["format"] != "png" || opts["ref"] != "thumbnail" {
		t.Errorf("options = %v", opts)
	}
	if task["created_by"] != "tester" {
		t.Errorf("created_by = %v, want the token's name", task["created_by"])
	}
	in := task["input"].(map[string]any)
	if in["id"] != f["id"] || in["url"] != v.srv.URL+"/files/"+f["id"].(string)+"/content" {
		t.Errorf("input = %v", in)
	}
	res, b2 := v.do("GET", "/tasks/"+id, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("get: %d %s", res.StatusCode, b2)
	}
	got := decode[map[string]any](t, b2)
	for _, k := range []string{"status", "progress", "updated", "output"} {
		delete(got, k) // the task may have moved on meanwhile
		delete(task, k)
	}
	if !reflect.DeepEqual(got, task) {
		t.Errorf("GET differs from the create's answer:\n%s\n%s", b2, b)
	}
	done := v.waitTask(id)
	if done["status"] != "completed" {
		t.Fatalf("task ended %v: %v", done["status"], done["error"])
	}
	out := done["output"].(map[string]any)
	oid, _ := out["id"].(string)
	if out["url"] != v.srv.URL+"/files/"+oid+"/content" {
		t.Errorf("output url = %v", out["url"])
	}
	res, png := v.do("GET", "/files/"+oid+"/content", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("output content: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// TestIdempotencyKey: a retried POST with the same Idempotency-Key
// returns the first task.
func TestIdempotencyKey(t *testing.T) {
	v := newEnv(t, nil)
	body := `{"kind": "echo", "n": 1}`
	_, b1 := v.do("POST", "/tasks", body, "Idempotency-Key", "k-1")
	res, b2 := v.do("POST", "/tasks", body, "Idempotency-Key", "k-1")
	t1, t2 := decode[map[string]any](t, b1), decode[map[string]any](t, b2)
	if t1["id"] == nil || t1["id"] != t2["id"] {
		t.Fatalf("retry made another task: %s then %s", b1, b2)
	}
	if res.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry not marked Idempotent-Replayed")
	}
	_, b3 := v.do("POST", "/tasks", `{"kind": "echo", "n": 1, "idempotency_key": "k-1"}`)
	if decode[map[string]any](t, b3)["id"] != t1["id"] {
		t.Errorf("body idempotency_key not honoured: %s", b3)
	}
}

// TestIdempotencyKeyPerToken: a key is its token's own; another token
// with the same key gets a task of its own, and its own retry returns it.
func TestIdempotencyKeyPerToken(t *testing.T) {
	v := newEnv(t, &api.Options{Tokens: []api.Token{{Name: "tester", Secret: testToken}, {Name: "other", Secret: "0ther"}}})
	body := `{"kind": "echo", "idempotency_key": "order-1"}`
	_, b1 := v.do("POST", "/tasks", body)
	res2, b2 := v.do("POST", "/tasks", body, "Authorization", "Bearer 0ther")
	_, b3 := v.do("POST", "/tasks", body, "Authorization", "Bearer 0ther")
	t1, t2, t3 := decode[map[string]any](t, b1), decode[map[string]any](t, b2), decode[map[string]any](t, b3)
	if t1["id"] == nil || t2["id"] == nil || t1["id"] == t2["id"] {
		t.Fatalf("two tokens with one key share a task: %s and %s", b1, b2)
	}
	if res2.Header.Get("Idempotent-Replayed") != "" || t2["created_by"] != "other" {
		t.Errorf("the other token's first POST: replayed %q, created_by %v", res2.Header.Get("Idempotent-Replayed"), t2["created_by"])
	}
	if t3["id"] != t2["id"] {
		t.Errorf("the other token's retry made another task: %s then %s", b2, b3)
	}
}
