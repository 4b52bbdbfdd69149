package spool_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/spoolrun/spool"
)

// TestCustomOptionsNotJSON: a custom kind's option that JSON cannot hold is
// refused at Create, naming the option, and nothing is stored. It used to
// be stored (1e400) and then poison every read of the row.
func TestCustomOptionsNotJSON(t *testing.T) {
	ctx := context.Background()
	e, err := openFuzzEngine()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	var fromJSON spool.Request
	if err := json.Unmarshal([]byte(`{"kind":"custom","x":1e400}`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	self := map[string]any{}
	self["self"] = self
	tests := []struct {
		name  string
		req   spool.Request
		field string
	}{
		{"1e400 from JSON", fromJSON, "x"},
		{"+Inf", spool.Request{Kind: "custom", Options: map[string]any{"x": math.Inf(1)}}, "x"},
		{"-Inf", spool.Request{Kind: "custom", Options: map[string]any{"x": math.Inf(-1)}}, "x"},
		{"NaN", spool.Request{Kind: "custom", Options: map[string]any{"x": math.NaN()}}, "x"},
		{"nested Inf", spool.Request{Kind: "custom", Options: map[string]any{"ok": 1, "x": []any{1, map[string]any{"y": math.Inf(1)}}}}, "x"},
		{"1e400 from Go", spool.Request{Kind: "custom", Options: map[string]any{"x": json.Number("1e400")}}, "x"},
		{"not a number", spool.Request{Kind: "custom", Options: map[string]any{"x": json.Number("Inf")}}, "x"},
		{"channel", spool.Request{Kind: "custom", Options: map[string]any{"x": make(chan int)}}, "x"},
		{"cycle", spool.Request{Kind: "custom", Options: map[string]any{"x": self}}, "x"},
		{"first in name order", spool.Request{Kind: "custom", Options: map[string]any{"b": math.NaN(), "a": math.NaN()}}, "a"},
		{"in a CreateMany", fromJSON, "requests[1].x"},
		{"ref not UTF-8", spool.Request{Kind: "custom", Ref: "a\xff"}, "ref"},
		{"step of a workflow", spool.Request{Kind: "workflow", URL: "https://example.com/a.mp4",
			Workflow: []spool.Step{{Kind: "custom", Options: map[string]any{"x": math.Inf(1)}}}}, "workflow[0].x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.name == "in a CreateMany" {
				_, err = e.CreateMany(ctx, []spool.Request{{Kind: "custom"}, tt.req})
			} else {
				_, err = e.Create(ctx, tt.req)
			}
			var ve *spool.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("Create = %v, want a *ValidationError for %s", err, tt.field)
			}
		})
	}
	page, err := e.List(ctx, nil)
	if err != nil || page.Total != 0 {
		t.Fatalf("List = %+v, %v; want no tasks stored", page, err)
	}
	// Large but finite numbers are fine, and read back as they were given.
	task, err := e.Create(ctx, spool.Request{Kind: "custom", Options: map[string]any{"x": json.Number("1e300"), "y": 1e300}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Get(ctx, task.ID)
	if err != nil || got.Options["x"] != 1e300 || got.Options["y"] != 1e300 {
		t.Fatalf("Get = %v, %v; want x and y 1e300", got, err)
	}
}

// TestCustomOptionsCreateEqualsGet: a kind without a spec takes any JSON
// data, and the task Create returns has the options Get returns, types
// included (an integral number is int64 whatever Go type it was given as).
func TestCustomOptionsCreateEqualsGet(t *testing.T) {
	ctx := context.Background()
	e, err := openFuzzEngine()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	type point struct{ X, Y int }
	opts := map[string]any{"int": 3, "float": 2.0, "frac": 0.25, "int8": int8(-4), "f32": float32(0.1),
		"big": uint64(math.MaxUint64), "num": json.Number("7"), "list": []string{"a"}, "struct": point{1, 2},
		"nested": map[string]any{"a": []any{1.0, "\xff"}}, "bad utf8": "a\xffb", "null": nil}
	task, err := e.Create(ctx, spool.Request{Kind: "custom", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"int": int64(3), "float": int64(2), "frac": 0.25, "int8": int64(-4), "f32": 0.1,
		"big": float64(math.MaxUint64), "num": int64(7), "list": []any{"a"},
		"struct": map[string]any{"X": int64(1), "Y": int64(2)},
		"nested": map[string]any{"a": []any{int64(1), "\ufffd"}}, "bad utf8": "a\ufffdb", "null": nil}
	if !reflect.DeepEqual(task.Options, want) {
		t.Errorf("Create: options %#v, want %#v", task.Options, want)
	}
	got, err := e.Get(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Options, task.Options) {
		t.Errorf("Get: options %#v, want Create's %#v", got.Options, task.Options)
	}
	stored, err := e.Store().GetTask(ctx, task.ID)
	if err != nil || stored.Options["int"] != int64(3) || stored.Options["frac"] != 0.25 {
		t.Errorf("Store().GetTask: options %#v, %v; want int64(3) and 0.25", stored.Options, err)
	}
	opts["nested"].(map[string]any)["a"].([]any)[0] = "changed"
	if task.Options["nested"].(map[string]any)["a"].([]any)[0] != int64(1) {
		t.Error("the task shares the request's nested options")
	}
}
