package kinds_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/spoolrun/spool"
)

// TestHTTPDefaultBody: a POST without a body option sends, in a workflow,
// the workflow's results so far (the step before it, with its output);
// outside one, the task itself. A GET sends nothing.
func TestHTTPDefaultBody(t *testing.T) {
	t.Parallel()
	type received struct {
		method, contentType string
		body                []byte
	}
	got := make(chan received, 10)
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.Method, r.Header.Get("Content-Type"), b}
		w.WriteHeader(http.StatusNoContent)
	})
	e := newHTTPEngine(t, spool.Config{})

	// Outside a workflow: the task.
	task := run(t, e, spool.Request{Kind: spool.KindHTTP, URL: srv.URL, Options: map[string]any{"method": "POST"}})
	httpOutputOf(t, task)
	r := <-got
	var sent struct {
		ID, Object, Kind string
	}
	if err := json.Unmarshal(r.body, &sent); err != nil || r.contentType != "application/json" ||
		sent.ID != task.ID || sent.Object != "task" || sent.Kind != spool.KindHTTP {
		t.Fatalf("outside a workflow, sent %s %q (%v): want the task %s as JSON", r.contentType, r.body, err, task.ID)
	}

	// A GET sends no body.
	httpOutputOf(t, run(t, e, spool.Request{Kind: spool.KindHTTP, URL: srv.URL}))
	if r := <-got; r.method != http.MethodGet || len(r.body) != 0 {
		t.Fatalf("GET sent %s %q, want no body", r.method, r.body)
	}

	// In a workflow: the results of the steps before it.
	in, err := e.CreateFile(t.Context(), bytes.NewReader(pngBytes(t, 8, 8)), &spool.FileParams{Filename: "dot.png"})
	if err != nil {
		t.Fatal(err)
	}
	var steps []spool.Step
	if err := json.Unmarshal([]byte(`[{"kind": "ingest", "ref": "stored", "next": [
		{"kind": "http", "url": "`+srv.URL+`", "method": "POST", "ref": "notify"}]}]`), &steps); err != nil {
		t.Fatal(err)
	}
	wf := run(t, e, spool.Request{Kind: spool.KindWorkflow, FileID: in.ID, Workflow: steps})
	if wf.Status != spool.StatusCompleted {
		t.Fatalf("workflow %s: %s", wf.Status, wf.Error)
	}
	r = <-got
	var results struct {
		Passed []struct {
			Kind, Ref, Step string
			Output          struct{ ID, Object string }
		}
		Failed   []any
		Continue bool
	}
	if err := json.Unmarshal(r.body, &results); err != nil || r.contentType != "application/json" {
		t.Fatalf("in a workflow, sent %s %q (%v): want the results as JSON", r.contentType, r.body, err)
	}
	if len(results.Passed) != 1 || len(results.Failed) != 0 || !results.Continue {
		t.Fatalf("results sent %s: want the ingest step alone, passed", r.body)
	}
	p := results.Passed[0]
	if p.Kind != spool.KindIngest || p.Ref != "stored" || p.Step != "workflow[0]" || p.Output.ID == "" || p.Output.Object != "source" {
		t.Errorf("passed step %+v in %s: want the ingest step with its file", p, r.body)
	}
}
