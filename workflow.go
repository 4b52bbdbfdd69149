package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Step is one step of a workflow: a task of Kind whose Next steps start
// when it completes. Its JSON form is flat like a create body:
// {"kind": "image", "width": 320, "ref": "thumb", "next": […]}.
//
// A top-level step runs on the workflow's input; a next step runs on the
// File its predecessor produced (the task's Output, when that is a file
// object), or else on its predecessor's input. A step of a kind that
// takes no input (http) gets none.
type Step struct {
	Kind string
	Ref  string
	// URL is, for a step of a kind that takes no input (http), the kind's
	// url: the request target. Other steps take their input from the
	// workflow, so they have none.
	URL     string
	Next    []Step
	Options map[string]any
}

// Limits on a workflow's shape.
const (
	maxSteps     = 100
	maxStepDepth = 10
)

// UnmarshalJSON decodes a step; a field of the wrong type is a
// *ValidationError naming it.
func (s *Step) UnmarshalJSON(b []byte) error {
	fields, err := decodeObject(b)
	if err != nil {
		return &ValidationError{Field: "step", Reason: err.Error()}
	}
	var out Step
	for name, dst := range map[string]*string{"kind": &out.Kind, "ref": &out.Ref, "url": &out.URL} {
		if raw, ok := fields[name]; ok {
			delete(fields, name)
			if err := json.Unmarshal(raw, dst); err != nil {
				return invalid(name, "must be a string")
			}
		}
	}
	if raw, ok := fields["next"]; ok {
		delete(fields, "next")
		if string(raw) != "null" {
			var err error
			if out.Next, err = decodeSteps(raw); err != nil {
				return asValidation("next", err)
			}
		}
	}
	if len(fields) > 0 {
		out.Options = make(map[string]any, len(fields))
		for name, raw := range fields {
			v, err := decodeValue(raw)
			if err != nil {
				return invalid(name, "%v", err)
			}
			out.Options[name] = v
		}
	}
	*s = out
	return nil
}

// decodeSteps decodes a list of steps; an error names the step by its
// index ("[1].kind"), as validation does.
func decodeSteps(raw []byte) ([]Step, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("must be a list of steps")
	}
	out := make([]Step, len(list))
	for i, b := range list {
		if err := out[i].UnmarshalJSON(b); err != nil {
			at := fmt.Sprintf("[%d]", i)
			if ve, ok := err.(*ValidationError); ok && ve.Field == "step" { // not an object
				return nil, &ValidationError{Field: at, Reason: ve.Reason, Err: ve.Err}
			}
			return nil, asValidation(at, err)
		}
	}
	return out, nil
}

// MarshalJSON encodes the step flat, options at the top level.
func (s Step) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(s.Options)+3)
	maps.Copy(m, s.Options)
	m["kind"] = s.Kind
	if s.Ref != "" {
		m["ref"] = s.Ref
	}
	if s.URL != "" {
		m["url"] = s.URL
	}
	if len(s.Next) > 0 {
		m["next"] = s.Next
	}
	return json.Marshal(m)
}

// stepOnlyFields are the request fields that belong to the workflow as a
// whole, not to one of its steps.
var stepOnlyFields = []string{"file_id", "webhook_url", "workflow", "idempotency_key", "run_at"}

// stepCheck is what validateSteps carries down the tree.
type stepCheck struct {
	policy urlPolicy
	count  int
}

// validateSteps checks every step's kind and options, depth first, and
// returns the steps with their options normalized. Field names locate the
// step: workflow[1].next[0].width. pred is the kind of the step these
// follow ("" at the top), and chain holds the refs and kinds of the steps
// before these in their chain, which conditions may name.
func (e *Engine) validateSteps(field string, steps []Step, depth int, pred string, chain []string, c *stepCheck) ([]Step, error) {
	if depth > maxStepDepth {
		return nil, invalid(field, "nested deeper than %d levels", maxStepDepth)
	}
	out := make([]Step, len(steps))
	for i, st := range steps {
		f := fmt.Sprintf("%s[%d]", field, i)
		if c.count++; c.count > maxSteps {
			return nil, invalid(field, "more than %d steps", maxSteps)
		}
		if st.Kind == "" {
			return nil, invalid(f+".kind", "is required")
		}
		if st.Kind == KindWorkflow {
			return nil, invalid(f+".kind", "a workflow cannot be a step of a workflow")
		}
		spec, ok := e.spec(st.Kind)
		if !ok {
			return nil, invalid(f+".kind", "unknown kind %q", st.Kind)
		}
		if _, err := e.checkAvailable(st.Kind); err != nil {
			return nil, asValidation(f, err)
		}
		opts := maps.Clone(st.Options)
		if _, ok := opts[""]; ok {
			return nil, invalid(f, "an option has an empty name")
		}
		// A Step built in Go may carry its step fields among its options,
		// where the stored definition would take them for the step's own
		// (and a stored ref that is not a string loses the step).
		if r, ok := opts["ref"]; ok {
			ref, isStr := r.(string)
			switch {
			case !isStr:
				return nil, invalid(f+".ref", "must be a string")
			case st.Ref != "" && st.Ref != ref:
				return nil, invalid(f+".ref", "given twice, as Step.Ref %q and as the option %q", st.Ref, ref)
			}
			st.Ref = ref
			delete(opts, "ref")
		}
		for _, name := range []string{"kind", "next"} {
			if _, ok := opts[name]; ok {
				return nil, invalid(f+"."+name, "is a field of the step (Step.%s), not an option",
					strings.ToUpper(name[:1])+name[1:])
			}
		}
		if !utf8.ValidString(st.Ref) {
			return nil, invalid(f+".ref", "not valid UTF-8")
		}
		if utf8.RuneCountInString(st.Ref) > maxRefLen {
			return nil, invalid(f+".ref", "longer than %d characters", maxRefLen)
		}
		for _, name := range stepOnlyFields {
			if _, ok := opts[name]; ok {
				return nil, invalid(f+"."+name, "is a field of the workflow request, not of a step")
			}
		}
		if u, ok := opts["url"]; ok { // a Step built in Go with url among its options
			if st.URL, ok = u.(string); !ok {
				return nil, invalid(f+".url", "must be a string")
			}
			delete(opts, "url")
		}
		names := map[string]string{}
		for _, name := range []string{"filename", "folder"} {
			if v, ok := opts[name]; ok {
				s, isStr := v.(string)
				if !isStr {
					return nil, invalid(f+"."+name, "must be a string")
				}
				names[name] = s
				delete(opts, name)
			}
		}
		if err := checkNames(f+".", names["filename"], names["folder"]); err != nil {
			return nil, err
		}
		input := InputOptional
		if spec != nil {
			input = spec.Input
		}
		switch {
		case input == InputNone && st.URL == "" && st.Kind == KindHTTP:
			return nil, invalid(f+".url", "is required: the request target of an http step")
		case input == InputNone && st.URL != "":
			if err := c.policy.checkURL(f+".url", st.URL, false); err != nil {
				return nil, err
			}
		case st.URL != "":
			return nil, invalid(f+".url", "%s %s step takes its input from the workflow or the step before it: give the workflow the url", article(st.Kind), st.Kind)
		case input == InputRequired && pred == KindHTTP:
			// An http step has no input to pass on and makes no file.
			return nil, invalid(f+".kind", "kind %s needs an input file, and the http step before it makes none: "+
				"make it a top-level step, or put it after a step that makes a file", st.Kind)
		}
		opts, err := validateOptions(spec, opts)
		if err != nil {
			return nil, asValidation(f, err)
		}
		if st.Kind == KindConditions {
			if err := checkConditionProps(opts["conditions"], chain); err != nil {
				return nil, asValidation(f+".conditions", err)
			}
		}
		for name, v := range names {
			if v != "" {
				if opts == nil {
					opts = map[string]any{}
				}
				opts[name] = v
			}
		}
		st.Options = opts
		if st.Next != nil {
			next := append(slices.Clip(chain), st.Kind)
			if st.Ref != "" {
				next = append(next, st.Ref)
			}
			if st.Next, err = e.validateSteps(f+".next", st.Next, depth+1, st.Kind, next, c); err != nil {
				return nil, err
			}
		}
		out[i] = st
	}
	return out, nil
}

// article is the indefinite article before a kind's name: "an image step",
// "an http step", "a video step".
func article(kind string) string {
	if strings.HasPrefix(kind, "http") || kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an"
	}
	return "a"
}
