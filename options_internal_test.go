package spool

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

func TestDecodeOptions(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]any
		bad  bool
	}{
		{in: `null`, want: nil},
		{in: `{}`, want: map[string]any{}},
		{in: `{"n": 3, "neg": -7, "zero": -0}`, want: map[string]any{"n": int64(3), "neg": int64(-7), "zero": int64(0)}},
		{in: `{"f": 2.5, "g": 1e-3}`, want: map[string]any{"f": 2.5, "g": 0.001}},
		{in: `{"i": 2.0, "e": 1e3, "E": 1E+2}`, want: map[string]any{"i": int64(2), "e": int64(1000), "E": int64(100)}},
		{in: `{"max": 9223372036854775807, "min": -9223372036854775808}`,
			want: map[string]any{"max": int64(math.MaxInt64), "min": int64(math.MinInt64)}},
		{in: `{"over": 9223372036854775808, "big": 1e300}`, want: map[string]any{"over": 9223372036854775808.0, "big": 1e300}},
		{in: `{"l": [1, 2.5, [3], {"a": 4}], "s": "5", "b": true, "z": null}`,
			want: map[string]any{"l": []any{int64(1), 2.5, []any{int64(3)}, map[string]any{"a": int64(4)}}, "s": "5", "b": true, "z": nil}},
		{in: `{"x": 1e400}`, bad: true},
		{in: `{"x": [{"y": -1e400}]}`, bad: true},
		{in: `[1]`, bad: true},
		{in: `{} {}`, bad: true},
	}
	for _, tt := range tests {
		got, err := decodeOptions([]byte(tt.in))
		if tt.bad {
			if err == nil {
				t.Errorf("decodeOptions(%s) = %#v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("decodeOptions(%s) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
}

// TestPlainValue checks that plainValue gives what storing a value and
// decoding it gives, and refuses what JSON cannot hold.
func TestPlainValue(t *testing.T) {
	self := []any{nil}
	self[0] = self
	tests := []struct {
		name string
		in   any
		want any
		bad  bool
	}{
		{name: "nil", in: nil, want: nil},
		{name: "int", in: 3, want: int64(3)},
		{name: "int32", in: int32(-3), want: int64(-3)},
		{name: "uint64 max", in: uint64(math.MaxUint64), want: float64(math.MaxUint64)},
		{name: "integral float", in: 4.0, want: int64(4)},
		{name: "fraction", in: 0.1, want: 0.1},
		{name: "float32", in: float32(0.1), want: 0.1},
		{name: "2^63", in: math.Exp2(63), want: math.Exp2(63)},
		{name: "-2^63", in: -math.Exp2(63), want: int64(math.MinInt64)},
		{name: "number", in: json.Number("12"), want: int64(12)},
		{name: "empty number", in: json.Number(""), want: int64(0)},
		{name: "string", in: "é", want: "é"},
		{name: "bad utf-8", in: "a\xff", want: "a\ufffd"},
		{name: "bad utf-8 key", in: map[string]any{"\xff": 1.0}, want: map[string]any{"\ufffd": int64(1)}},
		{name: "[]string", in: []string{"a"}, want: []any{"a"}},
		{name: "struct", in: struct{ N float64 }{2}, want: map[string]any{"N": int64(2)}},
		{name: "raw", in: json.RawMessage(`{"a":[1.5]}`), want: map[string]any{"a": []any{1.5}}},
		{name: "nested", in: map[string]any{"a": []any{1.0, map[string]any{"b": 2}}},
			want: map[string]any{"a": []any{int64(1), map[string]any{"b": int64(2)}}}},
		{name: "NaN", in: math.NaN(), bad: true},
		{name: "Inf", in: math.Inf(1), bad: true},
		{name: "nested -Inf", in: []any{math.Inf(-1)}, bad: true},
		{name: "Inf in a struct", in: struct{ F float64 }{math.Inf(1)}, bad: true},
		{name: "1e400", in: json.Number("1e400"), bad: true},
		{name: "not a number", in: json.Number("NaN"), bad: true},
		{name: "hex", in: json.Number("0x10"), bad: true},
		{name: "channel", in: make(chan int), bad: true},
		{name: "func", in: func() {}, bad: true},
		{name: "cycle", in: self, bad: true},
	}
	for _, tt := range tests {
		got, err := plainValue(tt.in, 0)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: plainValue = %#v, want an error", tt.name, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: plainValue = %#v, %v; want %#v", tt.name, got, err, tt.want)
			continue
		}
		// What is stored decodes to the same value.
		b, err := json.Marshal(map[string]any{"v": got})
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeOptions(b)
		if err != nil || !reflect.DeepEqual(back["v"], got) {
			t.Errorf("%s: stored and read back as %#v, %v; want %#v", tt.name, back["v"], err, got)
		}
	}
}

func TestRetype(t *testing.T) {
	list := []any{1.0, int64(2)}
	tests := []struct {
		name        string
		typ, items  OptionType
		in, want    any
		wantChanged bool
	}{
		{name: "int stays", typ: TypeInt, in: int64(3), want: int64(3)},
		{name: "integral float to int", typ: TypeInt, in: 3.0, want: int64(3), wantChanged: true},
		{name: "fraction stays for int", typ: TypeInt, in: 3.5, want: 3.5},
		{name: "percent stays", typ: TypeInt, in: "50%", want: "50%"},
		{name: "int to number", typ: TypeNumber, in: int64(3), want: 3.0, wantChanged: true},
		{name: "number stays", typ: TypeNumber, in: 3.0, want: 3.0},
		{name: "json.Number to number", typ: TypeNumber, in: json.Number("3"), want: 3.0, wantChanged: true},
		{name: "json.Number to int", typ: TypeInt, in: json.Number("3.0"), want: int64(3), wantChanged: true},
		{name: "bad json.Number stays", typ: TypeInt, in: json.Number("1e400"), want: json.Number("1e400")},
		{name: "go int", typ: TypeAny, in: 7, want: int64(7), wantChanged: true},
		{name: "any integral", typ: TypeAny, in: 7.0, want: int64(7), wantChanged: true},
		{name: "undeclared", typ: "", in: 1e300, want: 1e300},
		{name: "string", typ: TypeString, in: "3", want: "3"},
		{name: "list of numbers", typ: TypeList, items: TypeNumber, in: list, want: []any{1.0, 2.0}, wantChanged: true},
		{name: "list of ints", typ: TypeList, items: TypeInt, in: list, want: []any{int64(1), int64(2)}, wantChanged: true},
		{name: "list of any", typ: TypeList, in: []any{int64(1), "a"}, want: []any{int64(1), "a"}},
		{name: "object of numbers", typ: TypeObject, items: TypeNumber, in: map[string]any{"a": int64(1)},
			want: map[string]any{"a": 1.0}, wantChanged: true},
		{name: "nested any", typ: TypeAny, in: map[string]any{"a": []any{2.0, 2.5}},
			want: map[string]any{"a": []any{int64(2), 2.5}}, wantChanged: true},
		{name: "items only one level", typ: TypeList, items: TypeNumber, in: []any{[]any{int64(1)}}, want: []any{[]any{int64(1)}}},
	}
	for _, tt := range tests {
		got, changed := retype(tt.typ, tt.items, tt.in)
		if !reflect.DeepEqual(got, tt.want) || changed != tt.wantChanged {
			t.Errorf("%s: retype = %#v, %v; want %#v, %v", tt.name, got, changed, tt.want, tt.wantChanged)
		}
	}
	if list[0] != 1.0 || list[1] != int64(2) {
		t.Errorf("retype modified its input: %v", list)
	}
}

// TestDecodeOptionsLargeIntegers: integers beyond 2^53 keep every digit.
func TestDecodeOptionsLargeIntegers(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{`9007199254740993`, int64(9007199254740993)},
		{`-9007199254740993`, int64(-9007199254740993)},
		{`9007199254740992`, int64(9007199254740992)},
		{`9223372036854775807`, int64(math.MaxInt64)},
		{`-9223372036854775809`, int64(math.MinInt64)}, // its float64 value fits
		{`9223372036854775808`, 9223372036854775808.0},
		{`1e19`, 1e19},
		{`9007199254740993.0`, int64(9007199254740992)}, // as ParseFloat reads it
	}
	for _, tt := range tests {
		got, err := decodeOptions([]byte(`{"a": 1, "l": [2.5, {"x": ` + tt.in + `}]}`))
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		want := map[string]any{"a": int64(1), "l": []any{2.5, map[string]any{"x": tt.want}}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decodeOptions = %#v, want %#v", tt.in, got, want)
		}
	}
}
