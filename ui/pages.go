package ui

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// overview is GET /: counts, queue, throughput and kinds.
func (h *handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cursor := h.cursor(ctx)
	st, err := h.e.Stats(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	type statusCount struct {
		Status spool.Status
		Count  int
	}
	type kindRow struct {
		Kind          string
		Counts        []int
		Total         int
		OldestPending time.Time
	}
	statuses := spool.Statuses()
	var byStatus []statusCount
	total := 0
	for _, s := range statuses {
		byStatus = append(byStatus, statusCount{s, st.ByStatus[s]})
		total += st.ByStatus[s]
	}
	var kinds []kindRow
	for k, m := range st.ByKind {
		row := kindRow{Kind: k, OldestPending: st.OldestPendingByKind[k]}
		for _, s := range statuses {
			row.Counts = append(row.Counts, m[s])
			row.Total += m[s]
		}
		kinds = append(kinds, row)
	}
	slices.SortFunc(kinds, func(a, b kindRow) int { return strings.Compare(a.Kind, b.Kind) })
	var oldest string
	if !st.OldestPending.IsZero() {
		oldest = humanDuration(time.Since(st.OldestPending).Seconds())
	}
	rate := h.rate.lastMinutes(15)
	peak := 1
	sum := 0
	for _, m := range rate {
		peak = max(peak, m.Count)
		sum += m.Count
	}
	h.render(w, r, http.StatusOK, "overview", map[string]any{
		"Title": "Overview", "Nav": "overview",
		"ByStatus": byStatus, "Total": total, "Statuses": statuses, "Kinds": kinds,
		"Queue": st.ByStatus[spool.StatusPending], "Waiting": st.ByStatus[spool.StatusWaiting],
		"Running": st.ByStatus[spool.StatusProcessing], "OldestPending": oldest,
		"Rate": rate, "RatePeak": peak, "RateSum": sum, "RateSince": h.rate.since,
		"KindInfo": h.e.Kinds(ctx), "Cursor": cursor,
	})
}

// listParams reads the list's filters from a query.
func listParams(q url.Values) *spool.ListParams {
	return &spool.ListParams{Status: spool.Status(q.Get("status")), Kind: q.Get("kind"), Ref: q.Get("ref"),
		Folder: q.Get("folder"), ParentID: q.Get("parent"), After: q.Get("after"), Limit: 20, CheapTotal: true}
}

// listPage is GET /tasks: a page of tasks, newest first, with filters
// and a cursor.
func (h *handler) listPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lp := listParams(q)
	// Taken before the list, so that the live stream misses nothing.
	cursor := h.cursor(r.Context())
	page, err := h.e.List(r.Context(), lp)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	filters := url.Values{}
	for _, k := range []string{"status", "kind", "ref", "folder", "parent"} {
		if v := q.Get(k); v != "" {
			filters.Set(k, v)
		}
	}
	// The links are built here: html/template would escape a query's
	// = and & inside an href.
	first := template.URL(h.prefix + "/tasks")
	if len(filters) > 0 {
		first += template.URL("?" + filters.Encode())
	}
	var next template.URL
	if page.Next != "" {
		nq := url.Values{}
		for k, v := range filters {
			nq[k] = v
		}
		nq.Set("after", page.Next)
		next = template.URL(h.prefix + "/tasks?" + nq.Encode())
	}
	var kinds []string
	for _, k := range h.e.Kinds(r.Context()) {
		kinds = append(kinds, k.Kind)
	}
	h.render(w, r, http.StatusOK, "list", map[string]any{
		"Title": "Tasks", "Nav": "tasks", "Tasks": page.Tasks, "Total": page.Total, "Filters": filters,
		"F": lp, "First": first, "Next": next, "Cursor": cursor, "Paged": lp.After != "", "Kinds": kinds, "Statuses": spool.Statuses(),
	})
}

// taskRow is GET /tasks/{id}/row: the list's row of one task, which the
// list's script inserts when a task is created.
func (h *handler) taskRow(w http.ResponseWriter, r *http.Request) {
	t, err := h.e.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "list", map[string]any{"Entry": "rowT", "T": t})
}

// preview is a file as the task page shows it.
type preview struct {
	File   *spool.File
	URL    string
	Media  string // video, audio, image or "" for a link only
	Role   string // input, output or the step's ref
	Tracks []track
}

// track is a WebVTT file shown on a video or audio element.
type track struct {
	URL, Kind, Label, Lang string
}

// taskPage is GET /tasks/{id}; with ?part=live it renders only the
// sections that change, for the page's script.
func (h *handler) taskPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cursor := h.cursor(ctx)
	t, err := h.e.Get(ctx, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	previews, err := h.previews(r, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	evs, truncated, err := h.taskEvents(ctx, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	dels, err := h.e.Deliveries(ctx, t.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var tree []*node
	if len(t.Steps) > 0 && t.ParentID == "" {
		tree = h.workflowTree(ctx, t)
	}
	var condResults *spool.Results
	if t.Kind == spool.KindConditions {
		condResults = t.Results
	}
	data := map[string]any{
		"Title": t.Kind + " " + t.ID, "Nav": "tasks", "T": t, "Options": sortedOptions(t.Options),
		"Previews": previews, "Chapters": chapters(t.Output), "Events": evs, "EventsTruncated": truncated,
		"Deliveries": dels, "Tree": tree, "Conditions": condResults, "Retryable": t.Status.Terminal(), "Cursor": cursor,
	}
	if r.URL.Query().Get("part") == "live" {
		data["Entry"] = "live"
	}
	h.render(w, r, http.StatusOK, "task", data)
}

// previews lists the files a task page shows: its input, its outputs and,
// for a workflow, its steps' outputs. A video or audio gets the WebVTT
// files among them as tracks.
func (h *handler) previews(r *http.Request, t *spool.Task) ([]*preview, error) {
	ctx := r.Context()
	var out []*preview
	add := func(f *spool.File, role string) {
		if f == nil || f.ID == "" || slices.ContainsFunc(out, func(p *preview) bool { return p.File.ID == f.ID }) {
			return
		}
		out = append(out, &preview{File: f, URL: h.fileURL(f.ID), Media: mediaOf(f), Role: role})
	}
	add(t.Input, "input")
	owners := []struct{ id, role string }{{t.ID, "output"}}
	for i, s := range t.Workflow {
		if i >= 20 {
			break // a big workflow's outputs are on its steps' pages
		}
		role := s.Ref
		if role == "" {
			role = s.Kind
		}
		owners = append(owners, struct{ id, role string }{s.ID, role})
	}
	for _, o := range owners {
		fs, err := h.e.ListFiles(ctx, &spool.FileListParams{TaskID: o.id, Limit: 100})
		if err != nil {
			return nil, err
		}
		// Oldest first: a task's outputs in the order it made them.
		for i := len(fs) - 1; i >= 0; i-- {
			add(fs[i], o.role)
		}
	}
	var tracks []track
	for _, p := range out {
		f := p.File
		if !strings.HasPrefix(f.Type, "text/vtt") && f.Format != "vtt" && !strings.HasSuffix(f.Filename, ".vtt") {
			continue
		}
		tr := track{URL: p.URL, Label: f.Kind, Lang: f.Language}
		switch f.Kind {
		case "subtitles", "captions":
			tr.Kind = "subtitles"
		case "chapters":
			tr.Kind = "chapters"
		default:
			tr.Kind = "metadata"
		}
		if tr.Label == "" {
			tr.Label = f.Filename
		}
		tracks = append(tracks, tr)
	}
	for _, p := range out {
		if p.Media == "video" || p.Media == "audio" {
			p.Tracks = tracks
		}
	}
	return out, nil
}

// mediaOf says how to show a file: video, audio, image, or "".
func mediaOf(f *spool.File) string {
	for _, m := range []string{"video", "audio", "image"} {
		if strings.HasPrefix(f.Type, m+"/") {
			return m
		}
	}
	if f.Type == "" && (f.Kind == "video" || f.Kind == "audio" || f.Kind == "image") {
		return f.Kind
	}
	return ""
}

func (h *handler) fileURL(id string) string {
	return h.prefix + "/files/" + url.PathEscape(id) + "/content"
}

// chapter is one entry of a chapters task's output.
type chapter struct {
	Index int     `json:"index"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Title string  `json:"title"`
}

// chapters reads the chapters list of a chapters task's output, if any.
func chapters(out json.RawMessage) []chapter {
	if len(out) == 0 || out[0] != '{' {
		return nil
	}
	var v struct {
		Chapters []chapter `json:"chapters"`
	}
	_ = json.Unmarshal(out, &v)
	return v.Chapters
}

// node is a step of a workflow's tree.
type node struct {
	Path     string
	Kind     string
	Ref      string
	Task     *spool.TaskSummary // nil until the step has started
	Skipped  string             // why a step never started, once the workflow knows
	Results  *spool.Results     // a conditions step's verdict
	Children []*node
}

// workflowTree builds the steps' tree from the workflow's definitions,
// with each started step's summary and each conditions step's results.
func (h *handler) workflowTree(ctx context.Context, t *spool.Task) []*node {
	byPath := map[string]*spool.TaskSummary{}
	for i := range t.Workflow {
		byPath[t.Workflow[i].Step] = &t.Workflow[i]
	}
	skipped := map[string]string{}
	if t.Results != nil {
		for _, s := range t.Results.Skipped {
			p, _ := s["step"].(string)
			reason, _ := s["reason"].(string)
			if reason == "" {
				reason = "skipped"
			}
			skipped[p] = reason
		}
	}
	var build func(steps []spool.Step, base string) []*node
	build = func(steps []spool.Step, base string) []*node {
		var out []*node
		for i, s := range steps {
			path := base + "[" + strconv.Itoa(i) + "]"
			n := &node{Path: path, Kind: s.Kind, Ref: s.Ref, Task: byPath[path], Skipped: skipped[path]}
			if n.Task != nil && n.Task.Kind == spool.KindConditions {
				if c, err := h.e.Get(ctx, n.Task.ID); err == nil {
					n.Results = c.Results
				}
			}
			n.Children = build(s.Next, path+".next")
			out = append(out, n)
		}
		return out
	}
	return build(t.Steps, "workflow")
}

// cursor returns where a page's live stream starts: the last event now,
// "start" if there is none yet, or "" (from the moment the stream opens)
// if the store could not tell.
func (h *handler) cursor(ctx context.Context) string {
	id, err := h.e.Store().LastEventID(ctx)
	switch {
	case err != nil:
		return ""
	case id == "":
		return "start"
	}
	return id
}
