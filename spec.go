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
	"strings"
	"unicode/utf8"
)

// OptionType is the type of a kind option's value. Validate normalizes every
// value to one Go type per OptionType, so that handlers can type-assert
// without caring whether the request came as JSON or from Go code; the
// engine gives a stored task's options the same types when it reads them.
type OptionType string

// TypeInt is an integer, normalized to int64. Integral floats (320.0) and
// json.Number are accepted because JSON decoders produce them for integers.
const TypeInt OptionType = "int"

// TypeNumber is a number, normalized to float64.
const TypeNumber OptionType = "number"

// TypeString is a string; Min and Max, if set, bound its length in characters.
const TypeString OptionType = "string"

// TypeBool is true or false.
const TypeBool OptionType = "bool"

// TypeEnum is one of OptionSpec.Enum. It matches case-insensitively and is
// normalized to the spelling in Enum, so "post" becomes "POST" and "PNG"
// becomes "png": a user's capitalization is never worth a failed task.
const TypeEnum OptionType = "enum"

// TypeObject is a JSON object, normalized to map[string]any. Items, if set,
// is the type of its values (an HTTP header map is an object of strings).
const TypeObject OptionType = "object"

// TypeList is a JSON array, normalized to []any. Items, if set, is the type
// of its elements; Min and Max, if set, bound its length.
const TypeList OptionType = "list"

// TypeAny is any JSON value, copied into the types encoding/json decodes to
// (with integers as int64). It exists for payloads that are legitimately
// either a string or an object, such as an HTTP request body.
const TypeAny OptionType = "any"

// OptionSpec declares one option of a kind.
type OptionSpec struct {
	Name        string     `json:"name"`
	Type        OptionType `json:"type"`
	Description string     `json:"description"`
	Required    bool       `json:"required,omitempty"`
	Enum        []string   `json:"enum,omitempty"`
	// Min and Max are the inclusive range of an int or number, or the
	// length bounds of a string or list; nil is unbounded.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Default is filled into the options when the option is absent or null.
	// It is normalized like a given value, so a literal 80 becomes int64(80).
	Default any `json:"default,omitempty"`
	// Percent lets an int also be a percentage string "1%" to "100%", kept
	// as a string, since a handler needs the input's size to resolve it.
	Percent bool `json:"percent,omitempty"`
	// Items is the type of a list's elements or of an object's values.
	Items OptionType `json:"items,omitempty"`
	// Check runs after the type and range checks, on the normalized value,
	// for rules a type cannot express; its error's text becomes the Reason.
	Check func(v any) error `json:"-"`
}

// InputRule says whether a kind takes an input file (url or file_id).
type InputRule int

const (
	// InputRequired kinds need a url or file_id to work on.
	InputRequired InputRule = iota
	// InputOptional kinds use an input if given (a conditions step can test
	// earlier outputs alone).
	InputOptional
	// InputNone kinds take no input file: their url, if any, is something
	// else, such as the target of the http kind.
	InputNone
)

// String returns "required", "optional" or "none".
func (r InputRule) String() string {
	switch r {
	case InputRequired:
		return "required"
	case InputOptional:
		return "optional"
	case InputNone:
		return "none"
	}
	return "InputRule(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText makes an InputRule a readable word in JSON, and fails for
// values outside the three rules so that a bad spec is not served.
func (r InputRule) MarshalText() ([]byte, error) {
	if r < InputRequired || r > InputNone {
		return nil, fmt.Errorf("spool: unknown input rule %d", int(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText reads what MarshalText writes, so that clients can decode
// the served specs into KindSpec.
func (r *InputRule) UnmarshalText(b []byte) error {
	for _, v := range []InputRule{InputRequired, InputOptional, InputNone} {
		if v.String() == string(b) {
			*r = v
			return nil
		}
	}
	return fmt.Errorf("spool: unknown input rule %q", b)
}

// KindSpec declares a kind: its options and whether it needs an input.
type KindSpec struct {
	Kind        string       `json:"kind"`
	Description string       `json:"description"`
	Input       InputRule    `json:"input"`
	Options     []OptionSpec `json:"options"`
	// Check, if set, runs last in Validate, on the valid options with
	// their defaults filled, for rules that tie options together (no h264
	// in webm). It returns a *ValidationError naming the option to blame;
	// any other error is reported against "options".
	Check func(opts map[string]any) error `json:"-"`
}

// MarshalJSON writes a kind without options as "options": [] rather than
// null, so that clients can iterate without a check.
func (s KindSpec) MarshalJSON() ([]byte, error) {
	type plainSpec KindSpec
	p := plainSpec(s)
	if p.Options == nil {
		p.Options = []OptionSpec{}
	}
	return json.Marshal(p)
}

// Option returns the named option's spec.
func (s *KindSpec) Option(name string) (OptionSpec, bool) {
	for _, o := range s.Options {
		if o.Name == name {
			return o, true
		}
	}
	return OptionSpec{}, false
}

// Validate checks opts against the spec and returns a new map with the
// values normalized (see the OptionType constants) and defaults filled. A
// null value counts as absent. Errors are *ValidationError with the option's
// name as Field; when several options are bad, the first in sorted-name
// order is reported so that the same request always gets the same error.
// Validate never modifies opts, and the result shares nothing with it.
func (s *KindSpec) Validate(opts map[string]any) (map[string]any, error) {
	names := slices.Collect(maps.Keys(opts))
	for _, o := range s.Options {
		if _, ok := opts[o.Name]; !ok && o.Required {
			names = append(names, o.Name)
		}
	}
	slices.Sort(names)
	out := make(map[string]any, len(s.Options))
	for _, name := range names {
		o, ok := s.Option(name)
		switch {
		case !ok:
			return nil, s.unknown(name)
		case opts[name] == nil && o.Required:
			return nil, invalid(name, "is required and %s", o.allowed())
		case opts[name] == nil:
			continue
		}
		v, err := o.normalize(opts[name])
		if err != nil {
			return nil, asValidation(name, err)
		}
		out[name] = v
	}
	for _, o := range s.Options {
		if _, ok := out[o.Name]; ok || o.Default == nil {
			continue
		}
		v, err := o.normalize(o.Default)
		if err != nil {
			return nil, invalid(o.Name, "bad default %v in kind %s: %s", o.Default, s.Kind, err)
		}
		out[o.Name] = v
	}
	if s.Check != nil {
		if err := s.Check(out); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				return nil, ve
			}
			return nil, invalid("options", "%s", err)
		}
	}
	return out, nil
}

func (s *KindSpec) unknown(name string) *ValidationError {
	if len(s.Options) == 0 {
		return invalid(name, "unknown option for kind %s, which takes none", s.Kind)
	}
	known := make([]string, len(s.Options))
	for i, o := range s.Options {
		known[i] = o.Name
	}
	slices.Sort(known)
	return invalid(name, "unknown option for kind %s; its options are %s", s.Kind, strings.Join(known, ", "))
}

// normalize converts v to the option's Go type and checks it; its error text
// is a Reason, or a *ValidationError naming a part of the value
// ("[0].operator").
func (o *OptionSpec) normalize(v any) (any, error) {
	p, err := plainJSON(v, 0)
	if err != nil {
		if o.Type == TypeObject || o.Type == TypeList || o.Type == TypeAny {
			return nil, err
		}
		return nil, errors.New(o.allowed())
	}
	if p, err = o.convert(p); err != nil {
		return nil, err
	}
	if o.Check != nil {
		if err := o.Check(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// convert checks a value made by plainJSON against the option's type and bounds.
// It may modify p, which is a copy.
func (o *OptionSpec) convert(p any) (any, error) {
	switch x := p.(type) {
	case int64:
		if o.Type == TypeNumber && o.inRange(float64(x)) {
			return float64(x), nil
		}
		if o.Type == TypeInt && o.inRange(float64(x)) {
			return x, nil
		}
	case float64:
		if o.Type == TypeNumber && o.inRange(x) {
			return x, nil
		}
		if o.Type == TypeInt && x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 && o.inRange(x) {
			return int64(x), nil
		}
	case string:
		switch o.Type {
		case TypeString:
			if o.inRange(float64(utf8.RuneCountInString(x))) {
				return x, nil
			}
		case TypeEnum:
			if i := slices.IndexFunc(o.Enum, func(e string) bool { return strings.EqualFold(e, x) }); i >= 0 {
				return o.Enum[i], nil
			}
		case TypeInt:
			if pct, ok := parsePercent(x); ok && o.Percent {
				return pct, nil
			}
		}
	case bool:
		if o.Type == TypeBool {
			return x, nil
		}
	case []any:
		if o.Type == TypeList && o.inRange(float64(len(x))) {
			for i := range x {
				if err := o.item(&x[i], fmt.Sprintf("%s[%d]", o.Name, i)); err != nil {
					return nil, err
				}
			}
			return x, nil
		}
	case map[string]any:
		if o.Type == TypeObject {
			for _, k := range slices.Sorted(maps.Keys(x)) {
				v := x[k]
				if err := o.item(&v, fmt.Sprintf("%s[%q]", o.Name, k)); err != nil {
					return nil, err
				}
				x[k] = v
			}
			return x, nil
		}
	}
	if o.Type == TypeAny {
		return p, nil
	}
	return nil, errors.New(o.allowed())
}

// item converts an element of a list, or a value of an object, to o.Items.
func (o *OptionSpec) item(v *any, at string) error {
	if o.Items == "" {
		return nil
	}
	c, err := (&OptionSpec{Type: o.Items}).convert(*v)
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	*v = c
	return nil
}

// percent reads "1%" to "100%" and returns it without leading zeros.
func parsePercent(s string) (string, bool) {
	digits, ok := strings.CutSuffix(s, "%")
	if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || n > 100 {
		return "", false
	}
	return strconv.Itoa(n) + "%", true
}

func (o *OptionSpec) inRange(f float64) bool {
	return (o.Min == nil || f >= *o.Min) && (o.Max == nil || f <= *o.Max)
}

// allowed describes the values the option takes, as a Reason.
func (o *OptionSpec) allowed() string {
	var s string
	switch o.Type {
	case TypeInt:
		s = "must be an integer" + o.bounds(" of", "")
		if o.Percent {
			s += " or a percentage from 1% to 100%"
		}
	case TypeNumber:
		s = "must be a number" + o.bounds(" of", "")
	case TypeString:
		s = "must be a string" + o.bounds(" of", "character")
	case TypeBool:
		s = "must be true or false"
	case TypeEnum:
		s = "must be one of " + strings.Join(o.Enum, ", ")
	case TypeObject:
		s = "must be an object" + plural(" of ", o.Items)
	case TypeList:
		s = "must be a list" + plural(" of ", o.Items) + o.bounds(" with", "item")
	case TypeAny:
		s = "must be JSON data"
	default:
		s = fmt.Sprintf("has unsupported type %q in its spec", o.Type)
	}
	return s
}

// bounds words Min and Max after a description: as a range of values, or,
// with a unit, as a length ("of 1 to 10000 characters").
func (o *OptionSpec) bounds(conn, unit string) string {
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	count := func(f float64) string {
		switch {
		case unit == "":
			return num(f)
		case f == 1:
			return "1 " + unit
		}
		return num(f) + " " + unit + "s"
	}
	switch {
	case o.Min != nil && o.Max != nil && unit == "":
		return " between " + num(*o.Min) + " and " + num(*o.Max)
	case o.Min != nil && o.Max != nil:
		return conn + " " + num(*o.Min) + " to " + count(*o.Max)
	case o.Min != nil:
		return conn + " at least " + count(*o.Min)
	case o.Max != nil:
		return conn + " at most " + count(*o.Max)
	}
	return ""
}

func plural(prefix string, t OptionType) string {
	noun := map[OptionType]string{TypeInt: "integers", TypeNumber: "numbers", TypeString: "strings",
		TypeBool: "booleans", TypeEnum: "strings", TypeObject: "objects", TypeList: "lists", TypeAny: "JSON values"}[t]
	if noun == "" {
		return ""
	}
	return prefix + noun
}

// maxOptionDepth bounds the nesting plainJSON accepts, which also stops it on a Go
// value that contains itself.
const maxOptionDepth = 1000

// plainJSON copies v into the types encoding/json decodes to, except that
// integers become int64 rather than float64. A Go value of any other type
// means what encoding/json makes of it, so Go callers may pass []string,
// map[string]string, structs or json.RawMessage.
func plainJSON(v any, depth int) (any, error) {
	if depth > maxOptionDepth {
		return nil, fmt.Errorf("must be nested at most %d levels deep", maxOptionDepth)
	}
	switch x := v.(type) {
	case nil, bool, string, int64:
		return x, nil
	case int:
		return int64(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("must be JSON data, which has no NaN or infinity")
		}
		return x, nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
		if f, err := x.Float64(); err == nil {
			return f, nil
		}
		return nil, fmt.Errorf("must be JSON data: %q is not a number", string(x))
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			c, err := plainJSON(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = c
		}
		return m, nil
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			c, err := plainJSON(e, depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = c
		}
		return l, nil
	}
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
	return plainJSON(x, depth+1)
}
