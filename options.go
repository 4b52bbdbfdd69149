package spool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Options are stored as JSON, which has one number type. So that a task's
// options are the same Go values wherever they come from (Create, Get, List,
// an event, a Job), every number is read by one rule: an integral value
// that fits in int64 is int64, any other float64. The engine then gives
// declared options their declared type (see Engine.typed).

// decodeOptions reads a task's stored options, numbers as int64 or float64.
// It decodes numbers as float64 first, which is cheaper than json.Number
// and exact for every integer below 2^53; only a task with a larger
// integer is decoded again with UseNumber, so that it keeps every digit.
func decodeOptions(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range m {
		c, exact := intFloats(v)
		if !exact {
			return decodeNumbers(b)
		}
		m[k] = c
	}
	return m, nil
}

// intFloats turns the integral float64s of a decoded value into int64, in
// place. It reports false if a float64 may be an integer that float64
// cannot hold exactly.
func intFloats(v any) (any, bool) {
	switch x := v.(type) {
	case float64:
		if a := math.Abs(x); a >= 1<<53 && a <= 1<<63 {
			return v, false
		}
		return floatValue(x), true
	case []any:
		for i, e := range x {
			c, ok := intFloats(e)
			if !ok {
				return v, false
			}
			x[i] = c
		}
	case map[string]any:
		for k, e := range x {
			c, ok := intFloats(e)
			if !ok {
				return v, false
			}
			x[k] = c
		}
	}
	return v, true
}

// decodeNumbers is decodeOptions reading every number from its digits.
func decodeNumbers(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("data after the options object")
	}
	for k, v := range m {
		c, err := plainNumbers(v)
		if err != nil {
			return nil, fmt.Errorf("option %s: %w", k, err)
		}
		m[k] = c
	}
	return m, nil
}

// plainNumbers turns the json.Numbers of a decoded value into int64 or
// float64, in place.
func plainNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return numberValue(x)
	case []any:
		for i, e := range x {
			c, err := plainNumbers(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
	case map[string]any:
		for k, e := range x {
			c, err := plainNumbers(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
	}
	return v, nil
}

// numberValue reads a JSON number literal by the rule above. A number
// outside float64's range is an error: it has no Go value to give.
func numberValue(n json.Number) (any, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return nil, fmt.Errorf("number %s is out of range", n)
	}
	return floatValue(f), nil
}

// floatValue applies the rule to a float64.
func floatValue(f float64) any {
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f)
	}
	return f
}

// plainOptions returns a copy of opts holding exactly what storing the
// options and reading them back gives (see plainValue). An option that JSON
// cannot hold is a *ValidationError naming it; if several cannot, the
// first in sorted-name order, so that a request always gets the same error.
func plainOptions(opts map[string]any) (map[string]any, error) {
	if opts == nil {
		return nil, nil
	}
	out := make(map[string]any, len(opts))
	var bad string
	var badErr error
	for name, v := range opts {
		p, err := plainValue(v, 0)
		if err != nil {
			if badErr == nil || name < bad {
				bad, badErr = name, err
			}
			continue
		}
		out[name] = p
	}
	if badErr != nil {
		return nil, invalid(bad, "%v", badErr)
	}
	return out, nil
}

// plainValue returns v as a JSON round trip gives it back, numbers by the
// rule above, or an error if JSON cannot hold it: NaN, an infinity, a
// number out of float64's range, a channel, a function, a cycle. Values
// already in that form are copied without encoding them.
func plainValue(v any, depth int) (any, error) {
	if depth > maxOptionDepth {
		return nil, fmt.Errorf("must be nested at most %d levels deep", maxOptionDepth)
	}
	switch x := v.(type) {
	case nil, bool, int64:
		return x, nil
	case int:
		return int64(x), nil
	case string:
		if utf8.ValidString(x) {
			return x, nil
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("must be JSON data, which has no NaN or infinity")
		}
		return floatValue(x), nil
	case json.Number:
		if x == "" {
			return int64(0), nil // as encoding/json writes it
		}
		if !json.Valid([]byte(x)) {
			return nil, fmt.Errorf("must be JSON data: %q is not a number", string(x))
		}
		return numberValue(x)
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			c, err := plainValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = c
		}
		return l, nil
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			if !utf8.ValidString(k) {
				return roundTrip(v)
			}
			c, err := plainValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = c
		}
		return m, nil
	}
	return roundTrip(v)
}

// roundTrip encodes v as JSON and decodes it as a stored option is.
func roundTrip(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("must be JSON data (%v)", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return nil, fmt.Errorf("must be JSON data (%v)", err)
	}
	x, err = plainNumbers(x)
	if err != nil {
		return nil, fmt.Errorf("must be JSON data: %v", err)
	}
	return x, nil
}

// typed returns t with its options in their declared types: an int option
// int64, a number option float64, a list's or an object's items in their
// Items type, and every other number by the rule above; so too the options
// of a workflow's Steps. It copies t only if something changes, and never
// modifies t, which the caller may share.
func (e *Engine) typed(t *Task) *Task {
	if t == nil {
		return t
	}
	opts, changed := e.typedOptions(t.Kind, t.Options)
	steps, stepsChanged := e.typedSteps(t.Steps)
	if !changed && !stepsChanged {
		return t
	}
	c := *t
	c.Options, c.Steps = opts, steps
	return &c
}

// typedOptions gives a kind's options their declared types (see typed),
// copying the map if anything changes.
func (e *Engine) typedOptions(kind string, in map[string]any) (map[string]any, bool) {
	if len(in) == 0 {
		return in, false
	}
	spec, _ := e.spec(kind)
	var opts map[string]any
	for name, v := range in {
		typ, items := TypeAny, OptionType("")
		if spec != nil {
			if o, ok := spec.Option(name); ok {
				typ, items = o.Type, o.Items
			}
		}
		c, changed := retype(typ, items, v)
		if !changed {
			continue
		}
		if opts == nil {
			opts = maps.Clone(in)
		}
		opts[name] = c
	}
	if opts == nil {
		return in, false
	}
	return opts, true
}

// typedSteps types the options of workflow steps, as typed does a task's,
// copying what changes.
func (e *Engine) typedSteps(in []Step) ([]Step, bool) {
	var out []Step
	for i, st := range in {
		opts, changed := e.typedOptions(st.Kind, st.Options)
		next, nextChanged := e.typedSteps(st.Next)
		if !changed && !nextChanged {
			continue
		}
		if out == nil {
			out = slices.Clone(in)
		}
		out[i].Options, out[i].Next = opts, next
	}
	if out == nil {
		return in, false
	}
	return out, true
}

// typedEvents types the tasks of events (see typed).
func (e *Engine) typedEvents(evs []*Event) []*Event {
	for i, ev := range evs {
		if t := e.typed(ev.Task); t != ev.Task {
			c := *ev
			c.Task = t
			evs[i] = &c
		}
	}
	return evs
}

// retype converts v to typ (items being the type of a list's or object's
// elements) and reports whether it changed anything. It never modifies v:
// a list or map that changes is copied. A value that does not fit typ, such
// as a fraction for an int, is left as it is.
func retype(typ, items OptionType, v any) (any, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := numberValue(x)
		if err != nil {
			return v, false
		}
		c, _ := retype(typ, items, n)
		return c, true
	case int:
		c, _ := retype(typ, items, int64(x))
		return c, true
	case int64:
		if typ == TypeNumber {
			return float64(x), true
		}
	case float64:
		if n, ok := floatValue(x).(int64); ok && typ != TypeNumber {
			return n, true
		}
	case []any:
		var sub OptionType
		if typ == TypeList {
			sub = items
		}
		var out []any
		for i, e := range x {
			if c, changed := retype(sub, "", e); changed {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = c
			}
		}
		if out != nil {
			return out, true
		}
	case map[string]any:
		var sub OptionType
		if typ == TypeObject {
			sub = items
		}
		var out map[string]any
		for k, e := range x {
			if c, changed := retype(sub, "", e); changed {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = c
			}
		}
		if out != nil {
			return out, true
		}
	}
	return v, false
}
