package api

import (
	"encoding/json"
	"testing"
)

// FuzzRawView: rewriting the file objects of an output never breaks it:
// valid JSON stays valid JSON, and nothing panics.
func FuzzRawView(f *testing.F) {
	for _, s := range []string{`{"object":"file","id":"file_1","url":"https://x/a.png"}`,
		`[{"object":"track","id":"file_2","sprite":{"object":"file","id":"file_3"}}]`,
		`{"id":"file_4"}`, `"file_5"`, `[1, 2.50, 12345678901234567890]`, `{"a":{"object":null,"id":"file_6","url":7}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := rawView("https://h/api", raw)
		if json.Valid(raw) && !json.Valid(out) {
			t.Fatalf("rawView(%s) = %s, not JSON", raw, out)
		}
	})
}
