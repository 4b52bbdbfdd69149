package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// conditionOperators are the operators of a condition; eq is the default.
var conditionOperators = []string{"eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists"}

// fileProps are the input file's properties a condition may test, beside
// metadata.<key>.
var fileProps = []string{"kind", "type", "object", "width", "height", "duration", "fps", "bitrate",
	"filesize", "codec", "container", "orientation", "rotation", "transparency", "animated", "frames",
	"language", "filename", "folder", "ref"}

// condition is one {prop, operator, value} of a conditions task.
type condition struct {
	Prop     string
	Operator string
	Value    any // as given: a string, number, bool or list
	raw      map[string]any
}

// parseCondition reads the i-th condition; its error is a *ValidationError
// naming the part at fault ("[0].operator").
func parseCondition(i int, v any) (condition, error) {
	at := fmt.Sprintf("[%d]", i)
	m, ok := v.(map[string]any)
	if !ok {
		return condition{}, invalid(at, "must be an object {prop, operator, value}")
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k != "prop" && k != "operator" && k != "value" {
			return condition{}, invalid(at+"."+k, "unknown field; the fields are prop, operator and value")
		}
	}
	c := condition{Operator: "eq", raw: m}
	if c.Prop, ok = m["prop"].(string); !ok || c.Prop == "" {
		return condition{}, invalid(at+".prop", "is required: a non-empty string")
	}
	if op, has := m["operator"]; has && op != nil && op != "" {
		if c.Operator, ok = op.(string); !ok || !slices.Contains(conditionOperators, c.Operator) {
			return condition{}, invalid(at+".operator", "must be one of %s", strings.Join(conditionOperators, ", "))
		}
	}
	value, has := m["value"]
	c.Value = value
	switch {
	case c.Operator == "exists":
		if _, err := existsWant(value); has && value != nil && err != nil {
			return condition{}, invalid(at+".value", "%v", err)
		}
	case !has || value == nil:
		return condition{}, invalid(at+".value", "is required for operator %s", c.Operator)
	case c.Operator == "in":
		switch x := value.(type) {
		case string:
		case []any:
			for j, e := range x {
				if _, ok := scalarString(e); !ok {
					return condition{}, invalid(fmt.Sprintf("%s.value[%d]", at, j), "must be a string, number or boolean")
				}
			}
		default:
			return condition{}, invalid(at+".value", "must be a list or a comma-separated string for operator in")
		}
	case c.Operator == "gt" || c.Operator == "gte" || c.Operator == "lt" || c.Operator == "lte":
		if _, isBool := value.(bool); isBool {
			return condition{}, invalid(at+".value", "must be a number or a string for operator %s", c.Operator)
		}
		fallthrough
	default:
		if _, ok := scalarString(value); !ok {
			return condition{}, invalid(at+".value", "must be a string, number or boolean for operator %s", c.Operator)
		}
	}
	return c, nil
}

// checkConditions is the conditions option's check: the shape of each
// condition. What a prop names is checked by checkConditionProps, which
// knows the steps before.
func checkConditions(v any) error {
	list, _ := v.([]any)
	for i, e := range list {
		if _, err := parseCondition(i, e); err != nil {
			return err
		}
	}
	return nil
}

// checkConditionProps refuses a prop that names no file property and no
// earlier step of the chain (its refs and kinds).
func checkConditionProps(v any, chain []string) error {
	list, _ := v.([]any)
	for i, e := range list {
		c, err := parseCondition(i, e)
		if err != nil {
			return err
		}
		if slices.Contains(fileProps, c.Prop) {
			continue
		}
		if key, ok := strings.CutPrefix(c.Prop, "metadata."); ok && key != "" {
			continue
		}
		if _, _, ok := splitStepProp(c.Prop, func(name string) bool { return slices.Contains(chain, name) }); ok {
			continue
		}
		where := "no earlier step in this chain has that ref or kind"
		if len(chain) == 0 {
			where = "no step comes before this one"
		}
		return invalid(fmt.Sprintf("[%d].prop", i), "unknown prop %q: use a property of the input file (%s), metadata.<key>, "+
			"or <ref>.<field> of an earlier step in the chain (%s)", c.Prop, strings.Join(fileProps, ", "), where)
	}
	return nil
}

// splitStepProp splits a prop <name>.<field> at the longest name for which
// known reports an earlier step (by ref or kind), so that a ref or kind
// with dots in it ("mod.v2") can be named: "mod.v2.detected" is field
// detected of the step mod.v2, even when a step mod comes before it too.
// Validation and evaluation both split here, so they agree.
func splitStepProp(prop string, known func(name string) bool) (name, field string, ok bool) {
	for i := strings.LastIndexByte(prop, '.'); i > 0; i = strings.LastIndexByte(prop[:i], '.') {
		if i+1 < len(prop) && known(prop[:i]) {
			return prop[:i], prop[i+1:], true
		}
	}
	return "", "", false
}

// existsWant reads exists' value: true when absent, else a boolean or
// "true"/"false".
func existsWant(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return true, nil
	case bool:
		return x, nil
	case string:
		if b, err := strconv.ParseBool(x); err == nil && (x == "true" || x == "false") {
			return b, nil
		}
	}
	return false, errors.New(`must be true or false (a boolean or the string "true" or "false") for operator exists`)
}

// scalarString renders a JSON scalar as the string a condition compares.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		return x.String(), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	}
	return "", false
}

// compare orders a and b as numbers when both parse as numbers, else as
// strings.
func compare(a, b string) int {
	x, okA := asNumber(a)
	y, okB := asNumber(b)
	if okA && okB {
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	return strings.Compare(a, b)
}

// asNumber parses s as a finite decimal number. ParseFloat also takes
// "NaN" and "Inf", which would make "nan" equal to every number, and Go's
// hex and underscore forms, which are no numbers in JSON or the hosted API.
func asNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "_xX") {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// holds evaluates the condition against the value found for its prop
// (found is false when the prop is absent).
func (c condition) holds(actual any, found bool) bool {
	if c.Operator == "exists" {
		want, _ := existsWant(c.Value)
		return found == want
	}
	if !found {
		return false
	}
	if list, ok := actual.([]any); ok && c.Operator == "contains" {
		want, _ := scalarString(c.Value)
		for _, e := range list {
			if s, ok := scalarString(e); ok && compare(s, want) == 0 {
				return true
			}
		}
		return false
	}
	got, ok := scalarString(actual)
	if !ok {
		b, _ := json.Marshal(actual)
		got = string(b)
	}
	want, _ := scalarString(c.Value)
	switch c.Operator {
	case "eq":
		return compare(got, want) == 0
	case "ne":
		return compare(got, want) != 0
	case "gt":
		return compare(got, want) > 0
	case "gte":
		return compare(got, want) >= 0
	case "lt":
		return compare(got, want) < 0
	case "lte":
		return compare(got, want) <= 0
	case "contains":
		return strings.Contains(got, want)
	case "in":
		var options []string
		if s, isStr := c.Value.(string); isStr {
			options = strings.Split(s, ",")
		} else {
			for _, e := range c.Value.([]any) {
				s, _ := scalarString(e)
				options = append(options, s)
			}
		}
		for _, o := range options {
			if compare(got, strings.TrimSpace(o)) == 0 {
				return true
			}
		}
	}
	return false
}

// lookupPath finds a dotted path in JSON data (objects decoded as
// map[string]any). Keys may hold dots themselves (metadata such as
// com.apple.quicktime.make): at each level, the longest key the path
// starts with is taken. A null counts as absent.
func lookupPath(v any, path string) (any, bool) {
	for {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		key, ok := longestKey(m, path)
		if !ok {
			return nil, false
		}
		v = m[key]
		if len(key) == len(path) {
			return v, v != nil
		}
		path = path[len(key)+1:]
	}
}

// longestKey returns the longest key of m that path is, or starts with
// followed by a dot. It compares the keys with path rather than looking up
// each of path's prefixes: those cost the path's length each, and a long
// path of many dots, at every level of data nested as deep, took hours.
func longestKey(m map[string]any, path string) (string, bool) {
	if !strings.Contains(path, ".") {
		_, ok := m[path]
		return path, ok
	}
	best, found := "", false
	for k := range m {
		if (!found || len(k) > len(best)) && strings.HasPrefix(path, k) && (len(k) == len(path) || path[len(k)] == '.') {
			best, found = k, true
		}
	}
	return best, found
}

// asData decodes JSON text, or the JSON form of a value, into plain data
// with json.Number numbers.
func asData(v any) any {
	b, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil
		}
	}
	out, err := decodeValue(b)
	if err != nil {
		return nil
	}
	return out
}

// conditionsHandler runs the conditions kind: every engine can.
type conditionsHandler struct{}

// Handle evaluates the task's conditions against its input file and the
// outputs of the steps before it, and completes with their results.
func (conditionsHandler) Handle(ctx context.Context, job *Job) error {
	in := job.Input()
	if in != nil && in.ID == "" && in.URL != "" {
		if _, err := job.InputPath(ctx); err != nil { // fetch and probe it
			return err
		}
		in = job.Input()
	}
	var file any
	if in != nil {
		file = asData(in)
	}
	list, _ := job.Task.Options["conditions"].([]any)
	res := &Results{Passed: []map[string]any{}, Failed: []map[string]any{}, Continue: true}
	up := &earlier{}
	for i, v := range list {
		c, err := parseCondition(i, v)
		if err != nil {
			return Permanent(fmt.Errorf("conditions%s: %s", err.(*ValidationError).Field, err.(*ValidationError).Reason))
		}
		actual, found, err := conditionValue(ctx, job, file, c.Prop, up)
		if err != nil {
			return err
		}
		entry := maps.Clone(c.raw)
		if found {
			entry["actual"] = actual
		}
		if c.holds(actual, found) {
			res.Passed = append(res.Passed, entry)
		} else {
			res.Failed = append(res.Failed, entry)
			res.Continue = false
		}
	}
	job.results = res
	return nil
}

// earlier holds the steps before a conditions step in its chain, nearest
// first, read once when a prop first names one.
type earlier struct {
	chain  []*Task
	loaded bool
}

// conditionValue finds what prop names: a property of the input file, or
// <ref>.<field> of an earlier step's output (or results), the ref or kind
// being the longest that prop starts with (see splitStepProp).
func conditionValue(ctx context.Context, job *Job, file any, prop string, up *earlier) (any, bool, error) {
	if slices.Contains(fileProps, prop) || strings.HasPrefix(prop, "metadata.") {
		v, ok := lookupPath(file, prop)
		if !ok && file != nil {
			// The file object leaves out false and zero; for these, a
			// probed file's silence means false or 0.
			switch prop {
			case "animated", "transparency":
				return false, true, nil
			case "rotation":
				if kind, _ := lookupPath(file, "kind"); kind == "image" || kind == "video" {
					return json.Number("0"), true, nil
				}
			}
		}
		return v, ok, nil
	}
	if !up.loaded {
		chain, err := job.upstreamChain(ctx)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, false, fmt.Errorf("spool: conditions: read the earlier steps: %w", err)
		}
		up.chain, up.loaded = chain, true
	}
	name, field, ok := splitStepProp(prop, func(name string) bool { return upstreamNamed(up.chain, name) != nil })
	if !ok {
		return nil, false, nil
	}
	step := upstreamNamed(up.chain, name)
	if len(step.Output) > 0 {
		if v, ok := lookupPath(asData(step.Output), field); ok {
			return v, true, nil
		}
	}
	if step.Results != nil {
		if v, ok := lookupPath(asData(step.Results), field); ok {
			return v, true, nil
		}
	}
	return nil, false, nil
}
