package spool

import (
	"math"
	"strconv"
	"strings"
)

// The accessors below read the task's options in the types Task.Options
// documents. Each reports false when the option is absent or null, or of
// another type: a handler decides what an absent option means, and the
// kind's spec (with its defaults) has already refused a wrong type at
// Create.

// Int returns an integer option (TypeInt): an int64, or a float64 with an
// integral value that fits in int64.
func (j *Job) Int(name string) (int64, bool) {
	switch x := j.Task.Options[name].(type) {
	case int64:
		return x, true
	case float64:
		if n, ok := floatValue(x).(int64); ok {
			return n, true
		}
	}
	return 0, false
}

// Float returns a number option (TypeNumber), or an integer one as a float64.
func (j *Job) Float(name string) (float64, bool) {
	switch x := j.Task.Options[name].(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// String returns a string option: TypeString, TypeEnum (in the spelling of
// the spec's Enum), or the percentage of a TypeInt option with Percent.
func (j *Job) String(name string) (string, bool) {
	s, ok := j.Task.Options[name].(string)
	return s, ok
}

// Bool returns a boolean option (TypeBool).
func (j *Job) Bool(name string) (bool, bool) {
	b, ok := j.Task.Options[name].(bool)
	return b, ok
}

// Strings returns a list option (TypeList) whose elements are all strings,
// as a new slice.
func (j *Job) Strings(name string) ([]string, bool) {
	l, ok := j.Task.Options[name].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(l))
	for i, e := range l {
		if out[i], ok = e.(string); !ok {
			return nil, false
		}
	}
	return out, true
}

// IntOrPercent returns a TypeInt option that may be a percentage
// (OptionSpec.Percent), such as an output width: an integer as it is, and
// "n%" (1 to 100) as n percent of whole, rounded to the nearest integer
// and at least 1. It reports false for a percentage of a whole below 1.
func (j *Job) IntOrPercent(name string, whole int64) (int64, bool) {
	if n, ok := j.Int(name); ok {
		return n, true
	}
	s, ok := j.String(name)
	if !ok || whole < 1 {
		return 0, false
	}
	norm, ok := parsePercent(s)
	if !ok {
		return 0, false
	}
	pct, _ := strconv.Atoi(strings.TrimSuffix(norm, "%"))
	f := math.Round(float64(pct) * float64(whole) / 100)
	if f >= float64(whole) {
		return whole, true // 100%, and no overflow near MaxInt64
	}
	return max(int64(f), 1), true
}
