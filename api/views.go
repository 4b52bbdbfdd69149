package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/spoolrun/spool"
)

// writeJSON writes v as a JSON response with status code.
func (h *handler) writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.failErr(w, r, err, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// fileView returns f as the API shows it: its url is where this API
// serves its bytes, and the URL it was downloaded from, if any, is its
// original. A url input not downloaded yet has no bytes here, so no url.
func fileView(base string, f *spool.File) *spool.File {
	if f == nil {
		return nil
	}
	c := *f
	if c.Original == "" {
		c.Original = c.URL // recorded before File.Original existed
	}
	c.URL = ""
	if c.ID != "" {
		c.URL = contentURL(base, c.ID)
	}
	c.Sprite = fileView(base, c.Sprite)
	return &c
}

func contentURL(base, id string) string { return base + "/files/" + id + "/content" }

// taskView returns t with every file object in it (its input, files in its
// output and in a workflow's results) pointing at this API.
func taskView(base string, t *spool.Task) *spool.Task {
	if t == nil {
		return nil
	}
	c := *t
	c.Input = fileView(base, t.Input)
	c.Output = rawView(base, t.Output)
	if t.Results != nil {
		if b, err := json.Marshal(t.Results); err == nil {
			if nb := rawView(base, b); !bytes.Equal(nb, b) {
				var res spool.Results
				if json.Unmarshal(nb, &res) == nil {
					c.Results = &res
				}
			}
		}
	}
	return &c
}

func tasksView(base string, ts []*spool.Task) []*spool.Task {
	out := make([]*spool.Task, len(ts))
	for i, t := range ts {
		out[i] = taskView(base, t)
	}
	return out
}

// rawView rewrites the file objects in a JSON document (an output: one
// file, a list of them, or a track or an intelligence result with files
// nested in it). A file object is an object with an "object" field and an
// "id" that starts with file_.
func rawView(base string, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || !bytes.Contains(raw, []byte(`"file_`)) {
		return raw
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // keeps integers exact
	var v any
	if d.Decode(&v) != nil {
		return raw
	}
	if !walkFiles(base, v) {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

// walkFiles rewrites the file objects in v in place and reports whether
// it found any.
func walkFiles(base string, v any) bool {
	found := false
	switch x := v.(type) {
	case map[string]any:
		id, _ := x["id"].(string)
		if _, ok := x["object"]; ok && strings.HasPrefix(id, "file_") {
			if u, _ := x["url"].(string); u != "" && x["original"] == nil {
				x["original"] = u
			}
			x["url"] = contentURL(base, id)
			found = true
		}
		for _, e := range x {
			found = walkFiles(base, e) || found
		}
	case []any:
		for _, e := range x {
			found = walkFiles(base, e) || found
		}
	}
	return found
}
