package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// isJSON reports whether the request's body is declared JSON. No
// Content-Type at all is taken as JSON, as the hosted API does.
func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// readJSONBody reads a JSON request body of at most maxJSONBody bytes, or
// answers the error and returns false.
func (h *handler) readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if !isJSON(r) {
		h.fail(w, r, &apiError{status: http.StatusUnsupportedMediaType, Error: Error{Kind: "unsupported_media_type",
			Field: "Content-Type", Message: "send the body as application/json, not " + r.Header.Get("Content-Type")}})
		return nil, false
	}
	if r.ContentLength > maxJSONBody {
		h.failErr(w, r, &http.MaxBytesError{Limit: maxJSONBody}, "")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			h.failErr(w, r, err, "")
		} else {
			h.fail(w, r, badRequest("body", "could not be read: %v", err))
		}
		return nil, false
	}
	return body, true
}

// createTask is POST /tasks: the hosted API's create call.
func (h *handler) createTask(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readJSONBody(w, r)
	if !ok {
		return
	}
	var req spool.Request
	if err := json.Unmarshal(body, &req); err != nil {
		var ve *spool.ValidationError
		if errors.As(err, &ve) && ve.Field != "body" {
			h.failErr(w, r, err, "")
		} else {
			h.fail(w, r, jsonSyntax(body, err))
		}
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if req.IdempotencyKey != "" && req.IdempotencyKey != key {
			h.fail(w, r, badRequest("idempotency_key", "differs from the Idempotency-Key header: give one or make them equal"))
			return
		}
		req.IdempotencyKey = key
	}
	req.CreatedBy = state(w).user
	if key := req.IdempotencyKey; key != "" {
		// The engine's limit holds the token's name too: say how long the
		// client's own part may be.
		room := spool.MaxIdempotencyKeyLen - (len(scopedKey(req.CreatedBy, key)) - len(key))
		if len(key) > room {
			h.fail(w, r, badRequest("idempotency_key", "longer than %d bytes (keys are kept with the token's name, up to %d bytes in all)",
				room, spool.MaxIdempotencyKeyLen))
			return
		}
	}
	req.IdempotencyKey = scopedKey(req.CreatedBy, req.IdempotencyKey)
	start := time.Now()
	t, err := h.e.Create(r.Context(), req)
	if err != nil {
		h.failErr(w, r, err, "")
		return
	}
	base := h.baseURL(r)
	w.Header().Set("Location", base+"/tasks/"+t.ID)
	if req.IdempotencyKey != "" && t.Created.Before(start.Add(-time.Millisecond)) {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	h.writeJSON(w, r, http.StatusCreated, taskView(base, t))
}

// scopedKey makes an idempotency key the token's own, as a hosted API's
// keys are its account's: two clients that happen to pick the same key
// each get their own task, not the other's. The name's length keeps any
// two (name, key) pairs apart whatever they contain.
func scopedKey(user, key string) string {
	if key == "" || user == "" {
		return key
	}
	return "token " + strconv.Itoa(len(user)) + ":" + user + ":" + key
}

// getTask is GET /tasks/{id}.
func (h *handler) getTask(w http.ResponseWriter, r *http.Request) {
	t, err := h.e.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.failErr(w, r, err, "task_not_found")
		return
	}
	h.writeJSON(w, r, http.StatusOK, taskView(h.baseURL(r), t))
}

// cancelTask is POST /tasks/{id}/cancel.
func (h *handler) cancelTask(w http.ResponseWriter, r *http.Request) {
	t, err := h.e.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		h.failErr(w, r, err, "task_not_found")
		return
	}
	h.writeJSON(w, r, http.StatusOK, taskView(h.baseURL(r), t))
}

// deleteTask is DELETE /tasks/{id}.
func (h *handler) deleteTask(w http.ResponseWriter, r *http.Request) {
	if err := h.e.Delete(r.Context(), r.PathValue("id")); err != nil {
		h.failErr(w, r, err, "task_not_found")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// queryInt reads an integer query parameter; absent is 0.
func queryInt(q url.Values, name string) (int, *apiError) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, badRequest(name, "must be an integer, not %q", s)
	}
	return n, nil
}

// maxPage is the largest page=N of GET /tasks: far past any table's end,
// and (N-1)*100 rows to skip still fits an int64.
const maxPage = 1 << 40

// listTasks is GET /tasks: a bare array, newest first, with a Link header.
func (h *handler) listTasks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lp := spool.ListParams{Status: spool.Status(q.Get("status")), Kind: q.Get("kind"),
		ParentID: q.Get("parent_id"), Ref: q.Get("ref"), Folder: q.Get("folder"), After: q.Get("after"),
		CheapTotal: true}
	var ae *apiError
	if lp.Page, ae = queryInt(q, "page"); ae == nil {
		lp.Limit, ae = queryInt(q, "limit")
	}
	if ae == nil && lp.After != "" && q.Has("page") {
		ae = badRequest("after", "give either page or after, not both")
	}
	if ae == nil && q.Has("limit") && lp.Limit == 0 {
		ae = badRequest("limit", "must be between 1 and 100")
	}
	if ae == nil && q.Has("page") && lp.Page < 1 {
		ae = badRequest("page", "must be 1 or more")
	}
	if ae == nil && lp.Page > maxPage {
		// The rows skipped, (page-1)*limit, would overflow into the first page's.
		ae = badRequest("page", "must be at most %d", maxPage)
	}
	if ae != nil {
		h.fail(w, r, ae)
		return
	}
	page, err := h.e.List(r.Context(), &lp)
	if err != nil {
		h.failErr(w, r, err, "")
		return
	}
	if lp.Page == 0 {
		lp.Page = 1
	}
	if lp.Limit == 0 {
		lp.Limit = 20
	}
	base := h.baseURL(r)
	w.Header().Set("Link", listLinks(base+"/tasks", q, &lp, page))
	if page.Total >= 0 {
		w.Header().Set("X-Total-Count", strconv.Itoa(page.Total))
	}
	h.writeJSON(w, r, http.StatusOK, tasksView(base, page.Tasks))
}

// listLinks builds the Link header of a page: self, first, prev, next
// and last. A page reached by an after cursor has a next link with the
// following cursor and no prev link: a cursor only goes forward. The last
// link needs the total, which is left uncounted when counting would read
// every match (a filter on ref, folder or parent_id): it is then absent.
func listLinks(path string, q url.Values, lp *spool.ListParams, page *spool.TaskPage) string {
	link := func(rel string, set func(url.Values)) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "page" && k != "after" && k != "limit" {
				v[k] = vs
			}
		}
		v.Set("limit", strconv.Itoa(lp.Limit))
		set(v)
		return "<" + path + "?" + v.Encode() + `>; rel="` + rel + `"`
	}
	atPage := func(n int) func(url.Values) { return func(v url.Values) { v.Set("page", strconv.Itoa(n)) } }
	last := -1
	if page.Total >= 0 {
		last = max(1, (page.Total+lp.Limit-1)/lp.Limit)
	}
	links := make([]string, 0, 5)
	if lp.After != "" {
		links = append(links, link("self", func(v url.Values) { v.Set("after", lp.After) }), link("first", atPage(1)))
		if page.Next != "" {
			links = append(links, link("next", func(v url.Values) { v.Set("after", page.Next) }))
		}
	} else {
		links = append(links, link("self", atPage(lp.Page)), link("first", atPage(1)))
		if lp.Page > 1 {
			prev := lp.Page - 1
			if last > 0 {
				prev = min(prev, last)
			}
			links = append(links, link("prev", atPage(prev)))
		}
		if page.Next != "" {
			links = append(links, link("next", atPage(lp.Page+1)))
		}
	}
	if last > 0 {
		links = append(links, link("last", atPage(last)))
	}
	return strings.Join(links, ", ")
}

// kindConfig is one kind in GET /tasks-config.
type kindConfig struct {
	Kind        string             `json:"kind"`
	Description string             `json:"description"`
	Input       string             `json:"input"` // required, optional or none
	Available   bool               `json:"available"`
	Reason      string             `json:"reason,omitempty"`
	Options     []spool.OptionSpec `json:"options"`
}

// tasksConfig is GET /tasks-config: every kind with its options, from the
// specs that validate requests, and whether this engine can run it.
func (h *handler) tasksConfig(w http.ResponseWriter, r *http.Request) {
	infos := h.e.Kinds(r.Context())
	out := make([]kindConfig, 0, len(infos))
	for _, k := range infos {
		c := kindConfig{Kind: k.Kind, Available: k.Available, Reason: k.Reason, Input: spool.InputOptional.String(),
			Options: []spool.OptionSpec{}}
		if k.Spec != nil {
			c.Description, c.Input = k.Spec.Description, k.Spec.Input.String()
			c.Options = append(c.Options, k.Spec.Options...)
		}
		out = append(out, c)
	}
	h.writeJSON(w, r, http.StatusOK, out)
}
