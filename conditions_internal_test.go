package spool

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLookupPath(t *testing.T) {
	data := asData(json.RawMessage(`{"kind": "video", "none": null,
		"metadata": {"title": "T", "com.apple.quicktime.make": "Apple", "exif": {"Make": "Canon"},
		             "a.b": 1, "a": {"b": {"c": 2}}}}`))
	tests := []struct {
		path  string
		want  any
		found bool
	}{
		{"kind", "video", true},
		{"none", nil, false},
		{"metadata.title", "T", true},
		{"metadata.com.apple.quicktime.make", "Apple", true},
		{"metadata.com.apple", nil, false},
		{"metadata.exif.Make", "Canon", true},
		{"metadata.exif.Model", nil, false},
		{"metadata.a.b", json.Number("1"), true}, // the longest key wins
		{"metadata.a.b.c", nil, false},           // a.b is no object
		{"metadata.title.x", nil, false},
		{"metadata.", nil, false},
		{"kind.", nil, false},
		{"nothing", nil, false},
	}
	for _, tt := range tests {
		got, found := lookupPath(data, tt.path)
		if found != tt.found || got != tt.want {
			t.Errorf("lookupPath(%q) = %v, %t; want %v, %t", tt.path, got, found, tt.want, tt.found)
		}
	}
}

func TestSplitStepProp(t *testing.T) {
	chain := []string{"mod", "mod.v2", "acme.scan", "speech"}
	known := func(name string) bool { return slices.Contains(chain, name) }
	tests := []struct {
		prop, name, field string
		ok                bool
	}{
		{"speech.text", "speech", "text", true},
		{"mod.v2.detected", "mod.v2", "detected", true}, // the longest name wins
		{"mod.v3.detected", "mod", "v3.detected", true},
		{"mod.label", "mod", "label", true},
		{"acme.scan.scores.nudity", "acme.scan", "scores.nudity", true},
		{"acme.score", "", "", false},
		{"mod.v2.", "mod", "v2.", true},
		{"mod", "", "", false},
		{"mod.", "", "", false},
		{".mod.x", "", "", false},
	}
	for _, tt := range tests {
		name, field, ok := splitStepProp(tt.prop, known)
		if name != tt.name || field != tt.field || ok != tt.ok {
			t.Errorf("splitStepProp(%q) = %q, %q, %t; want %q, %q, %t", tt.prop, name, field, ok, tt.name, tt.field, tt.ok)
		}
	}
}

// FuzzCondition evaluates any condition that parses against any JSON
// document: it never panics, and exists holds exactly when the prop is
// found (or, with false, when it is not).
func FuzzCondition(f *testing.F) {
	f.Add(`{"prop": "duration", "operator": "gt", "value": "60"}`, `{"duration": 90.5}`)
	f.Add(`{"prop": "metadata.com.apple.make", "value": "Apple"}`, `{"metadata": {"com.apple.make": "Apple"}}`)
	f.Add(`{"prop": "kind", "operator": "in", "value": ["video", "audio"]}`, `{"kind": "audio"}`)
	f.Add(`{"prop": "kind", "operator": "in", "value": "video,audio"}`, `{"kind": "image"}`)
	f.Add(`{"prop": "tags", "operator": "contains", "value": "a"}`, `{"tags": ["a", "b"]}`)
	f.Add(`{"prop": "x.y", "operator": "exists", "value": false}`, `{"x": {"y": null}}`)
	f.Add(`{"prop": "size", "operator": "lte", "value": "1e400"}`, `{"size": "999.5"}`)
	f.Fuzz(func(t *testing.T, cond, doc string) {
		v, err := decodeValue([]byte(cond))
		if err != nil {
			return
		}
		c, err := parseCondition(0, v)
		if err != nil {
			return
		}
		actual, found := lookupPath(asData(json.RawMessage(doc)), c.Prop)
		got := c.holds(actual, found)
		if c.Operator == "exists" {
			want, err := existsWant(c.Value)
			if err != nil {
				t.Fatalf("%s parsed, but its exists value does not: %v", cond, err)
			}
			if got != (found == want) {
				t.Errorf("%s on %s: holds %t, found %t", cond, doc, got, found)
			}
		}
	})
}

// A long prop of many dots, against data nested as deep, is looked up in
// time linear in its length (found in review: each level looked up every
// prefix of the rest of the path, each costing its length, so that one
// such condition held a worker for hours). The deadline is generous: the
// lookup takes milliseconds; before, minutes.
func TestLookupPathLongDottedProp(t *testing.T) {
	const depth = 200
	leaf := map[string]any{"x": json.Number("1")}
	data := leaf
	for range depth {
		m := map[string]any{"a": data}
		for i := range 20 { // a map too large to be scanned without hashing
			m[fmt.Sprint("k", i)] = i
		}
		data = m
	}
	path := strings.Repeat("a.", depth) + strings.Repeat("y.", 200_000) + "x"
	done := make(chan bool, 1)
	go func() {
		_, found := lookupPath(data, path)
		done <- found
	}()
	select {
	case found := <-done:
		if found {
			t.Errorf("lookupPath found a path that is not in the data")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("lookupPath of a long dotted path has not returned in 60s")
	}
	if got, found := lookupPath(data, strings.Repeat("a.", depth)+"x"); !found || got != json.Number("1") {
		t.Errorf("lookupPath of the deep path = %v, %t", got, found)
	}
}
