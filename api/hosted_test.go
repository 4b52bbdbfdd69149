package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// hostedClient is a client written for the hosted Tasks API from its
// documentation alone: net/http, bearer auth, Accept-Version, bare
// objects and arrays, pagination in the Link header. It knows nothing of
// spool.
type hostedClient struct {
	base, key string
	hc        *http.Client
}

// hostedTask is the documented task object.
type hostedTask struct {
	ID        string          `json:"id"`
	Object    string          `json:"object"`
	Kind      string          `json:"kind"`
	Status    string          `json:"status"`
	Progress  int             `json:"progress"`
	Input     map[string]any  `json:"input"`
	Options   map[string]any  `json:"options"`
	Output    json.RawMessage `json:"output"`
	Error     *string         `json:"error"`
	CreatedBy string          `json:"created_by"`
	Created   time.Time       `json:"created"`
	Updated   time.Time       `json:"updated"`
	ParentID  *string         `json:"parent_id"`
}

func (c *hostedClient) call(method, path string, body any, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept-Version", "2025-08-20")
	req.Header.Set("Content-Type", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 300 {
		return res, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return res, json.Unmarshal(b, out)
}

var nextRE = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

// TestHostedClient is acceptance 7: a client written for the hosted API
// works unchanged against the handler.
func TestHostedClient(t *testing.T) {
	v := newEnv(t, nil)
	c := &hostedClient{base: v.srv.URL, key: testToken, hc: &http.Client{Timeout: 30 * time.Second}}

	var created []hostedTask
	for i := range 3 {
		var task hostedTask
		res, err := c.call("POST", "/tasks", map[string]any{"kind": "echo", "ref": fmt.Sprint("r", i), "n": i}, &task)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 201 || task.Object != "task" || task.Kind != "echo" || task.Created.IsZero() ||
			task.Options["ref"] != fmt.Sprint("r", i) || task.Options["n"] != float64(i) {
			t.Fatalf("create: %d %+v", res.StatusCode, task)
		}
		created = append(created, task)
	}
	var got hostedTask
	deadline := time.Now().Add(30 * time.Second)
	for got.Status != "completed" {
		if _, err := c.call("GET", "/tasks/"+created[0].ID, nil, &got); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("task still %s", got.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got.ID != created[0].ID || got.Progress != 100 || len(got.Output) == 0 || got.Error != nil {
		t.Errorf("get: %+v", got)
	}

	// The SDKs page with page and limit and follow Link's next.
	var all []hostedTask
	path := "/tasks?page=1&limit=2"
	for path != "" {
		var page []hostedTask
		res, err := c.call("GET", path, nil, &page)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		path = ""
		if m := nextRE.FindStringSubmatch(res.Header.Get("Link")); m != nil {
			path = m[1][len(c.base):]
		}
	}
	if len(all) != 3 || all[0].ID != created[2].ID || all[2].ID != created[0].ID {
		t.Errorf("list: %d tasks", len(all))
	}
	var empty []hostedTask
	if _, err := c.call("GET", "/tasks?page=9&limit=2", nil, &empty); err != nil || empty == nil || len(empty) != 0 {
		t.Errorf("page past the end: %v %v", empty, err)
	}
}
