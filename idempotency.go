package spool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// requestDiff returns the first field, named as a create body names it
// ("kind", "width", "workflow[0].kind"), in which the new task t asks for
// something other than prev, the task stored earlier with t's idempotency
// key; "" if t is a replay of prev's request. Only what a request sets is
// compared, never what the engine makes (id, status, times, input record,
// max attempts) nor who asks (CreatedBy: the api package scopes keys per
// token). Both tasks were built by newTask, so their options already hold
// the defaults and declared types; what the JSON round trip through the
// store changes (int64 or float64 for 2, json.Number in steps, nil for
// empty) is compared by value, not form.
func requestDiff(prev, t *Task) string {
	switch {
	case prev.Kind != t.Kind:
		return "kind"
	case prev.URL != t.URL:
		return "url"
	case prev.FileID != t.FileID:
		return "file_id"
	case prev.WebhookURL != t.WebhookURL:
		return "webhook_url"
	case unixNano(prev.RunAt) != unixNano(t.RunAt):
		// As stored: the SQLite store keeps a run_at at the Unix epoch
		// as none (both are runnable at once).
		return "run_at"
	}
	// ref, filename and folder are among the options, named as in the body.
	if f := optionsDiff("", prev.Options, t.Options); f != "" {
		return f
	}
	return stepsDiff("workflow", prev.Steps, t.Steps)
}

// optionsDiff is requestDiff for options under path ("" at the top level,
// where an option is named alone).
func optionsDiff(path string, prev, opts map[string]any) string {
	a, errA := canonJSON(prev)
	b, errB := canonJSON(opts)
	if errA != nil || errB != nil {
		if path == "" {
			return "options"
		}
		return path
	}
	return jsonDiff(path, emptyObject(a), emptyObject(b))
}

// stepsDiff is requestDiff for workflow steps under path: a step's kind,
// ref and url before its options, so that another kind is named as such
// rather than by the first option whose default it changes.
func stepsDiff(path string, prev, steps []Step) string {
	if len(prev) != len(steps) {
		return path
	}
	for i := range steps {
		p, s := &prev[i], &steps[i]
		at := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case p.Kind != s.Kind:
			return at + ".kind"
		case p.Ref != s.Ref:
			return at + ".ref"
		case p.URL != s.URL:
			return at + ".url"
		}
		if f := optionsDiff(at, p.Options, s.Options); f != "" {
			return f
		}
		if f := stepsDiff(at+".next", p.Next, s.Next); f != "" {
			return f
		}
	}
	return ""
}

// keyMismatch is the error refusing a request whose idempotency key was
// first used for a different request; field is requestDiff's.
func keyMismatch(key, field string) *ValidationError {
	return &ValidationError{Field: field, Err: ErrIdempotencyMismatch,
		Reason: fmt.Sprintf("idempotency key %q was used for a different request: %s differs", key, field)}
}

// storeMismatch is the SQLite store's refusal, in its transaction, of the
// task at index of a CreateTasks batch, so that the engine can name the
// request it came from (requests[3].kind).
type storeMismatch struct {
	index int
	err   *ValidationError
}

func (e *storeMismatch) Error() string { return e.err.Error() }
func (e *storeMismatch) Unwrap() error { return e.err }

// canonJSON returns v as generic JSON data, numbers as json.Number.
func canonJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out any
	err = d.Decode(&out)
	return out, err
}

// emptyObject makes no options (stored as NULL) equal to empty options.
func emptyObject(v any) any {
	if v == nil {
		return map[string]any{}
	}
	return v
}

// jsonDiff returns the path of the first difference between a and b,
// generic JSON data, under path; "" if they are equal. Object members are
// visited in name order, so the same two requests always name the same
// field.
func jsonDiff(path string, a, b any) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return path
		}
		names := slices.Sorted(maps.Keys(x))
		for k := range y {
			if _, ok := x[k]; !ok {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		for _, k := range names {
			p := k
			if path != "" {
				p = path + "." + k
			}
			va, okA := x[k]
			vb, okB := y[k]
			if okA != okB {
				return p
			}
			if f := jsonDiff(p, va, vb); f != "" {
				return f
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return path
		}
		for i := range x {
			if f := jsonDiff(fmt.Sprintf("%s[%d]", path, i), x[i], y[i]); f != "" {
				return f
			}
		}
		return ""
	case json.Number:
		y, ok := b.(json.Number)
		if !ok || !sameNumber(x, y) {
			return path
		}
		return ""
	}
	if a != b { // nil, bool, string
		return path
	}
	return ""
}

// sameNumber compares two JSON numbers by value: 2, 2.0 and 2e0 are one.
// Options hold int64 when a number is integral and fits, else float64
// (plainValue), so integers compare exactly and the rest as float64.
func sameNumber(a, b json.Number) bool {
	if a == b {
		return true
	}
	ia, errA := strconv.ParseInt(string(a), 10, 64)
	ib, errB := strconv.ParseInt(string(b), 10, 64)
	if errA == nil && errB == nil {
		return ia == ib
	}
	fa, errA := strconv.ParseFloat(string(a), 64)
	fb, errB := strconv.ParseFloat(string(b), 64)
	return errA == nil && errB == nil && fa == fb
}
