package spool

import (
	"encoding/json"
	"fmt"
	"maps"
	"unicode/utf8"
)

// Step is one step of a workflow: a task of Kind run on the workflow's input
// (or, inside next, on the file its predecessor produced), whose Next steps
// start when it completes. Its JSON form is flat like a create body:
// {"kind": "image", "width": 320, "ref": "thumb", "next": […]}.
type Step struct {
	Kind    string
	Ref     string
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
	for name, dst := range map[string]*string{"kind": &out.Kind, "ref": &out.Ref} {
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
			if err := json.Unmarshal(raw, &out.Next); err != nil {
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

// MarshalJSON encodes the step flat, options at the top level.
func (s Step) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(s.Options)+3)
	maps.Copy(m, s.Options)
	m["kind"] = s.Kind
	if s.Ref != "" {
		m["ref"] = s.Ref
	}
	if len(s.Next) > 0 {
		m["next"] = s.Next
	}
	return json.Marshal(m)
}

// validateSteps checks every step's kind and options, depth first, and
// returns the steps with their options normalized. Field names locate the
// step: workflow[1].next[0].width.
func (e *Engine) validateSteps(field string, steps []Step, depth int, count *int) ([]Step, error) {
	if depth > maxStepDepth {
		return nil, invalid(field, "nested deeper than %d levels", maxStepDepth)
	}
	out := make([]Step, len(steps))
	for i, st := range steps {
		f := fmt.Sprintf("%s[%d]", field, i)
		if *count++; *count > maxSteps {
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
		if utf8.RuneCountInString(st.Ref) > maxRefLen {
			return nil, invalid(f+".ref", "longer than %d characters", maxRefLen)
		}
		if _, ok := st.Options[""]; ok {
			return nil, invalid(f, "an option has an empty name")
		}
		opts, err := validateOptions(spec, st.Options)
		if err != nil {
			return nil, asValidation(f, err)
		}
		st.Options = opts
		if st.Next != nil {
			if st.Next, err = e.validateSteps(f+".next", st.Next, depth+1, count); err != nil {
				return nil, err
			}
		}
		out[i] = st
	}
	return out, nil
}
