package spool

import (
	"encoding/json"
	"slices"
	"testing"
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
