package spool_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/spooltest"
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

// intKind is a custom kind whose handler declares its options.
type intKind struct {
	mu   sync.Mutex
	jobs map[string]map[string]any // options by task id, as the handler saw them
	acc  map[string]any            // what the accessors returned
}

func (k *intKind) Spec() *spool.KindSpec {
	return &spool.KindSpec{Kind: "counter", Input: spool.InputNone, Options: []spool.OptionSpec{
		{Name: "n", Type: spool.TypeInt},
		{Name: "scale", Type: spool.TypeNumber, Default: 2},
		{Name: "sizes", Type: spool.TypeList, Items: spool.TypeInt},
		{Name: "weights", Type: spool.TypeObject, Items: spool.TypeNumber},
		{Name: "tags", Type: spool.TypeList, Items: spool.TypeString},
		{Name: "width", Type: spool.TypeInt, Percent: true},
		{Name: "loud", Type: spool.TypeBool},
		{Name: "extra", Type: spool.TypeAny},
	}}
}

func pair(v any, ok bool) string { return fmt.Sprintf("%v %v", v, ok) }

func (k *intKind) Handle(_ context.Context, job *spool.Job) error {
	n, nok := job.Int("n")
	scale, sok := job.Float("scale")
	nf, nfok := job.Float("n")
	tags, tok := job.Strings("tags")
	width, wok := job.IntOrPercent("width", 640)
	loud, lok := job.Bool("loud")
	ref, rok := job.String("ref")
	_, missing := job.Int("absent")
	_, wrong := job.Int("tags")
	k.mu.Lock()
	defer k.mu.Unlock()
	k.jobs[job.Task.ID] = job.Task.Options
	k.acc = map[string]any{"n": pair(n, nok), "scale": pair(scale, sok), "nf": pair(nf, nfok),
		"tags": pair(tags, tok), "width": pair(width, wok), "loud": pair(loud, lok),
		"ref": pair(ref, rok), "absent": missing, "wrong": wrong}
	return nil
}

// TestOptionTypesKept: options keep their declared types in the task Create
// returns, in the Job, from Get, List, Events, Subscribe and OnEvent. A
// TypeInt option used to come back float64 from the store.
func TestOptionTypesKept(t *testing.T) {
	ctx := context.Background()
	var (
		mu      sync.Mutex
		onEvent []spool.Event
	)
	h := &intKind{jobs: map[string]map[string]any{}}
	e := spooltest.New(t, &spool.Config{OnEvent: func(ev spool.Event) {
		mu.Lock()
		onEvent = append(onEvent, ev)
		mu.Unlock()
	}}, map[string]spool.Handler{"counter": h})
	sub, err := e.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var body spool.Request
	if err := json.Unmarshal([]byte(`{"kind":"counter","n":3,"sizes":[1,2.0],"weights":{"a":1,"b":0.5},
		"tags":["x","y"],"width":"50%","loud":true,"extra":{"deep":[4,4.5]},"ref":"r1","idempotency_key":"k"}`), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"n": int64(3), "scale": 2.0, "sizes": []any{int64(1), int64(2)},
		"weights": map[string]any{"a": 1.0, "b": 0.5}, "tags": []any{"x", "y"}, "width": "50%", "loud": true,
		"extra": map[string]any{"deep": []any{int64(4), 4.5}}, "ref": "r1"}
	check := func(where string, got map[string]any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: options %#v, want %#v", where, got, want)
		}
	}
	created, err := e.Create(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	check("Create", created.Options)
	// The same idempotency key returns the stored task.
	again, err := e.Create(ctx, body)
	if err != nil || again.ID != created.ID {
		t.Fatalf("Create again = %v, %v; want task %s", again, err, created.ID)
	}
	check("Create with a used idempotency key", again.Options)
	done, err := e.Wait(ctx, created.ID)
	if err != nil || done.Status != spool.StatusCompleted {
		t.Fatalf("Wait = %v, %v; want completed", done, err)
	}
	check("Wait", done.Options)
	h.mu.Lock()
	check("Job", h.jobs[created.ID])
	wantAcc := map[string]any{"n": "3 true", "scale": "2 true", "nf": "3 true", "tags": "[x y] true",
		"width": "320 true", "loud": "true true", "ref": "r1 true", "absent": false, "wrong": false}
	if !reflect.DeepEqual(h.acc, wantAcc) {
		t.Errorf("accessors = %v, want %v", h.acc, wantAcc)
	}
	h.mu.Unlock()
	got, err := e.Get(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("Get", got.Options)
	page, err := e.List(ctx, &spool.ListParams{Kind: "counter"})
	if err != nil || len(page.Tasks) != 1 {
		t.Fatalf("List = %+v, %v; want one task", page, err)
	}
	check("List", page.Tasks[0].Options)
	evs, err := e.Events(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID == created.ID {
			check("Events "+string(ev.Type), ev.Task.Options)
			seen++
		}
	}
	if seen < 2 {
		t.Errorf("Events has %d events of the task, want created and completed at least", seen)
	}
	deadline := time.After(time.Minute)
	for seen = 0; seen < 2; {
		select {
		case ev := <-sub:
			if ev.Task.ID == created.ID {
				check("Subscribe "+string(ev.Type), ev.Task.Options)
				seen++
			}
		case <-deadline:
			t.Fatal("Subscribe: no events of the task within a minute")
		}
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	seen = 0
	for _, ev := range onEvent {
		if ev.Task.ID == created.ID {
			check("OnEvent "+string(ev.Type), ev.Task.Options)
			seen++
		}
	}
	if seen < 2 {
		t.Errorf("OnEvent saw %d events of the task, want created and completed at least", seen)
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

// TestJobAccessors reads options of a kind without a spec through the Job's
// accessors.
func TestJobAccessors(t *testing.T) {
	opts := map[string]any{"i": 3, "f": 2.5, "fi": 4.0, "s": "x", "b": false, "l": []string{"a", "b"},
		"mixed": []any{"a", 1}, "p": "1%", "big": 1e300, "null": nil}
	var got []string
	h := spool.HandlerFunc(func(_ context.Context, j *spool.Job) error {
		add := func(name string, v any, ok bool) { got = append(got, fmt.Sprintf("%s=%v/%v", name, v, ok)) }
		for _, n := range []string{"i", "fi", "f", "s", "big", "null", "absent"} {
			v, ok := j.Int(n)
			add("Int "+n, v, ok)
		}
		for _, n := range []string{"i", "f", "s"} {
			v, ok := j.Float(n)
			add("Float "+n, v, ok)
		}
		for _, n := range []string{"s", "i"} {
			v, ok := j.String(n)
			add("String "+n, v, ok)
		}
		for _, n := range []string{"b", "s"} {
			v, ok := j.Bool(n)
			add("Bool "+n, v, ok)
		}
		for _, n := range []string{"l", "mixed", "s"} {
			v, ok := j.Strings(n)
			add("Strings "+n, v, ok)
		}
		for _, c := range []struct {
			n     string
			whole int64
		}{{"i", 0}, {"p", 10}, {"p", 250}, {"p", 0}, {"s", 10}, {"f", 10}} {
			v, ok := j.IntOrPercent(c.n, c.whole)
			add(fmt.Sprintf("IntOrPercent %s of %d", c.n, c.whole), v, ok)
		}
		return nil
	})
	spooltest.Run(t, h, spool.Request{Kind: "custom", Options: opts})
	want := []string{"Int i=3/true", "Int fi=4/true", "Int f=0/false", "Int s=0/false", "Int big=0/false",
		"Int null=0/false", "Int absent=0/false", "Float i=3/true", "Float f=2.5/true", "Float s=0/false",
		"String s=x/true", "String i=/false", "Bool b=false/true", "Bool s=false/false",
		"Strings l=[a b]/true", "Strings mixed=[]/false", "Strings s=[]/false",
		"IntOrPercent i of 0=3/true", "IntOrPercent p of 10=1/true", "IntOrPercent p of 250=3/true",
		"IntOrPercent p of 0=0/false", "IntOrPercent s of 10=0/false", "IntOrPercent f of 10=0/false"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("accessors:\n got %q\nwant %q", got, want)
	}
}
