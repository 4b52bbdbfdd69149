package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// pages are the templates that render a whole page in the layout; each
// is parsed with layout.html into its own set, so that their blocks do
// not collide.
var pages = []string{"overview", "list", "task", "new", "login", "error"}

func parseTemplates(prefix string) map[string]*template.Template {
	funcs := template.FuncMap{
		"prefix":   func() string { return prefix },
		"ago":      ago,
		"when":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"size":     humanSize,
		"dur":      humanDuration,
		"json":     prettyJSON,
		"terminal": func(s spool.Status) bool { return s.Terminal() },
		"fval":     fmtValue,
		"short":    func(id string) string { return id[max(len(id)-8, 0):] },
		"deref2":   func(f *float64) string { return strconv.FormatFloat(*f, 'g', -1, 64) },
	}
	out := make(map[string]*template.Template, len(pages))
	for _, p := range pages {
		out[p] = template.Must(template.New(p).Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/parts.html", "templates/"+p+".html"))
	}
	return out
}

// ago says how long ago t was, in the largest unit that fits.
func ago(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return humanDuration(time.Since(t).Seconds()) + " ago"
}

// humanDuration writes seconds as 42s, 3m 5s, 2h 10m or 3d 4h.
func humanDuration(sec float64) string {
	d := time.Duration(math.Max(sec, 0) * float64(time.Second))
	switch {
	case d < time.Minute:
		if sec < 10 && sec != math.Trunc(sec) {
			return strconv.FormatFloat(sec, 'f', 1, 64) + "s"
		}
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", d/time.Minute, d%time.Minute/time.Second)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

// humanSize writes a byte count in B, KB, MB or GB (powers of 1000).
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMGT"[exp])
}

// prettyJSON indents a JSON value, or marshals a Go one, for a <pre>.
func prettyJSON(v any) string {
	var b []byte
	switch x := v.(type) {
	case json.RawMessage:
		if len(x) == 0 {
			return ""
		}
		var out strings.Builder
		var tmp any
		if json.Unmarshal(x, &tmp) != nil {
			return string(x)
		}
		b, _ = json.MarshalIndent(tmp, "", "  ")
		out.Write(b)
		return out.String()
	default:
		b, _ = json.MarshalIndent(v, "", "  ")
	}
	return string(b)
}

// fmtValue writes an option's value as text.
func fmtValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// keyValue is one row of a definition list.
type keyValue struct {
	Key   string
	Value string
}

// sortedOptions lists a task's options by name.
func sortedOptions(m map[string]any) []keyValue {
	out := make([]keyValue, 0, len(m))
	for k, v := range m {
		out = append(out, keyValue{k, fmtValue(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// liveTask is what the live stream sends of a task: enough for the list
// to update a row or decide whether a new task belongs on the page.
type liveTask struct {
	ID       string       `json:"id"`
	Kind     string       `json:"kind"`
	Status   spool.Status `json:"status"`
	Progress int          `json:"progress"`
	ParentID string       `json:"parent_id,omitempty"`
	Ref      string       `json:"ref,omitempty"`
	Folder   string       `json:"folder,omitempty"`
	Error    string       `json:"error,omitempty"`
	Updated  time.Time    `json:"updated"`
}

func toLive(t *spool.Task) liveTask {
	s, _ := t.Options["ref"].(string)
	f, _ := t.Options["folder"].(string)
	return liveTask{ID: t.ID, Kind: t.Kind, Status: t.Status, Progress: t.Progress, ParentID: t.ParentID,
		Ref: s, Folder: f, Error: t.Error, Updated: t.Updated}
}
