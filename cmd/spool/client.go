package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// apiVersion is the version of the hosted API's wire format the client
// speaks: bare objects, bare arrays with a Link header.
const apiVersion = "2025-08-20"

// client speaks the hosted Tasks API to a server: spool serve, or any
// program serving package api.
type client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

func newClient(server, token string) (*client, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("server %q: want an http(s) URL such as http://127.0.0.1:8080", server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	// Each call has its own deadline from its context; this bounds a
	// server that accepts and then never answers.
	return &client{base: u, token: token, hc: &http.Client{Timeout: time.Minute}}, nil
}

// apiError is an error response: {"error": {"kind", "message", "field"}}.
type apiError struct {
	Status  int    `json:"-"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("server answered %d", e.Status)
	if e.Kind != "" {
		s += " " + e.Kind
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Is makes a 400 match spool.ErrInvalidRequest, so that it exits as a
// usage error, a 404 spool.ErrNotFound and a 409 spool.ErrInvalidTransition.
func (e *apiError) Is(target error) bool {
	switch target {
	case spool.ErrInvalidTransition:
		return e.Status == http.StatusConflict
	case spool.ErrInvalidRequest:
		return e.Status == http.StatusBadRequest
	case spool.ErrNotFound:
		return e.Status == http.StatusNotFound
	}
	return false
}

// do sends a request and decodes a 2xx answer's JSON into out (unless
// nil). It returns the answer's header.
func (c *client) do(ctx context.Context, method, path string, query url.Values, out any) (http.Header, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Version", apiVersion)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if _, ok := errors.AsType[*net.OpError](err); ok {
			return nil, fmt.Errorf("%w (is spool serve running there? set --server or SPOOL_URL)", err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, u.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{Status: resp.StatusCode}
		var wrapped struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(body, &wrapped) == nil && wrapped.Error != nil {
			wrapped.Error.Status = resp.StatusCode
			ae = wrapped.Error
		} else {
			ae.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
		}
		if resp.StatusCode == http.StatusUnauthorized {
			ae.Message += " (set --token or SPOOL_TOKEN)"
		}
		return nil, ae
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode answer: %w", method, u.Path, err)
		}
	}
	return resp.Header, nil
}

// httpBackend is a backend on a server.
type httpBackend struct {
	c    *client
	poll time.Duration // pollInterval's answer; 0 for the default
}

func (b httpBackend) get(ctx context.Context, id string) (*spool.Task, error) {
	var t spool.Task
	_, err := b.c.do(ctx, http.MethodGet, "/tasks/"+url.PathEscape(id), nil, &t)
	return &t, err
}

func (b httpBackend) cancel(ctx context.Context, id string) (*spool.Task, error) {
	var t spool.Task
	_, err := b.c.do(ctx, http.MethodPost, "/tasks/"+url.PathEscape(id)+"/cancel", nil, &t)
	return &t, err
}

func (b httpBackend) list(ctx context.Context, p *spool.ListParams) ([]*spool.Task, string, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("status", string(p.Status))
	set("kind", p.Kind)
	set("parent_id", p.ParentID)
	set("ref", p.Ref)
	set("folder", p.Folder)
	set("after", p.After)
	if p.Page > 0 {
		q.Set("page", strconv.Itoa(p.Page))
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var ts []*spool.Task
	h, err := b.c.do(ctx, http.MethodGet, "/tasks", q, &ts)
	if err != nil {
		return nil, "", err
	}
	return ts, nextHint(h.Get("Link")), nil
}

// nextHint turns a Link header's next link into the flags that list that
// page: "--after task_…" or "--page 3"; "" when there is none.
func nextHint(link string) string {
	for part := range strings.SplitSeq(link, ",") {
		target, params, ok := strings.Cut(part, ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err != nil {
			return ""
		}
		q := u.Query()
		if a := q.Get("after"); a != "" {
			return "--after " + a
		}
		if p := q.Get("page"); p != "" {
			return "--page " + p
		}
	}
	return ""
}

// kindConfig is one kind in GET /tasks-config.
type kindConfig struct {
	Kind        string             `json:"kind"`
	Description string             `json:"description"`
	Input       spool.InputRule    `json:"input"`
	Available   bool               `json:"available"`
	Reason      string             `json:"reason"`
	Options     []spool.OptionSpec `json:"options"`
}

func (b httpBackend) kinds(ctx context.Context) ([]spool.KindInfo, error) {
	var ks []kindConfig
	if _, err := b.c.do(ctx, http.MethodGet, "/tasks-config", nil, &ks); err != nil {
		return nil, err
	}
	out := make([]spool.KindInfo, len(ks))
	for i, k := range ks {
		out[i] = spool.KindInfo{Kind: k.Kind, Available: k.Available, Reason: k.Reason,
			Spec: &spool.KindSpec{Kind: k.Kind, Description: k.Description, Input: k.Input, Options: k.Options}}
	}
	return out, nil
}

func (httpBackend) close() error { return nil }

// pollInterval is how often a server is asked how a task goes, besides
// when its event stream says the task changed.
func (b httpBackend) pollInterval() time.Duration {
	if b.poll > 0 {
		return b.poll
	}
	return time.Second
}

// events follows the server's event stream (GET /events?task=id, which
// has the task's workflow steps' events too) and sends a value on each
// event, so that a watcher reads the task at once. A server without the
// stream (the hosted API has none) leaves the channel silent: the watcher
// polls.
func (b httpBackend) events(ctx context.Context, id string) <-chan spool.Event {
	ch := make(chan spool.Event, 1)
	u := *b.c.base
	u.Path += "/events"
	u.RawQuery = url.Values{"task": {id}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return ch
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Accept-Version", apiVersion)
	if b.c.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.c.token)
	}
	go func() {
		// No client timeout: the stream lasts as long as the watch.
		resp, err := (&http.Client{Transport: b.c.hc.Transport}).Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			return
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20) // an event's data line holds a whole task
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "id:") {
				select {
				case ch <- spool.Event{}:
				default: // a wake-up is pending already
				}
			}
		}
	}()
	return ch
}
