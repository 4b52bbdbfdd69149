package kinds

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/internal/safehttp"
)

// newHTTP returns the handler of the http kind for an engine configured by
// ecfg, configured by cfg, which may be nil. It sends a request to the task's url with the task's method,
// headers and body, and completes with the response as the output:
//
//	{"status": 200, "url": "https://…", "headers": {"content-type": "…"}, "body": …, "size": 1234}
//
// headers has lower-case names, several values of one header joined with
// ", ". body is the parsed JSON when the response says it is JSON and is
// valid, else the text, else (bytes that are not UTF-8) base64 with
// "body_encoding": "base64"; it is null when empty. size is the body's
// length in bytes. url is where the response came from, after redirects.
//
// The request body option is sent as is when it is a string (as
// text/plain unless the headers set a Content-Type), else encoded as JSON
// (application/json). A POST, PUT or PATCH without one sends as JSON, in a
// workflow, the workflow's results so far ({passed, failed, skipped,
// continue}, as the workflow's results field shows them, with each
// completed step's output), else the task itself. The timeout option bounds the whole exchange.
//
// GET and HEAD follow up to 5 redirects; other methods follow none and
// complete with the 3xx response, since following would turn a POST into
// a GET (301, 302, 303) or send its body to another host (307, 308).
//
// Every connection, redirects included, goes through an SSRF-safe dialer
// that checks the resolved address under the engine's AllowPrivateNetworks
// and AllowNetworks: Create checks only a url's literal address.
// A refused address, a 4xx status other than 408 and 429, a bad
// certificate, a redirect loop or an oversized body fail the task; a 5xx,
// 408 or 429 status, a timeout or a network error are retried.
func newHTTP(ecfg spool.Config, cfg *Config) *httpHandler {
	c := cfg.withDefaults()
	base := safehttp.Config{
		AllowPrivate: ecfg.AllowPrivateNetworks,
		Allow:        ecfg.AllowNetworks, // NewClient copies it
		// The task's timeout option bounds the exchange, through the
		// request's context; the client's own limits would cut it short.
		ResponseHeaderTimeout: -1,
		Timeout:               -1,
		UserAgent:             c.HTTPUserAgent,
	}
	follow := base
	follow.MaxRedirects = maxRedirects
	return &httpHandler{
		follow:  safehttp.NewClient(follow),
		direct:  safehttp.NewClient(base),
		maxBody: c.HTTPMaxBodySize,
	}
}

// maxRedirects is how many redirects GET and HEAD requests follow.
const maxRedirects = 5

// Defaults of the http kind's options, for tasks stored before the spec
// filled them in.
const (
	defaultMethod  = http.MethodGet
	defaultTimeout = 30 * time.Second
)

type httpHandler struct {
	follow  *safehttp.Client // follows redirects: for GET and HEAD
	direct  *safehttp.Client // returns a 3xx response as is
	maxBody int64
}

// httpOutput is the output of an http task.
type httpOutput struct {
	Status       int               `json:"status"`
	URL          string            `json:"url"`
	Headers      map[string]string `json:"headers"`
	Body         any               `json:"body"`
	BodyEncoding string            `json:"body_encoding,omitempty"`
	Size         int               `json:"size"`
}

// errTimedOut is the cause of a request context that ran past the task's
// timeout option.
var errTimedOut = errors.New("request timed out")

func (h *httpHandler) Handle(ctx context.Context, job *spool.Job) error {
	opts := job.Task.Options
	method, _ := job.String("method")
	if method == "" {
		method = defaultMethod
	}
	timeout := defaultTimeout
	if s, ok := job.Float("timeout"); ok && s > 0 {
		timeout = time.Duration(s * float64(time.Second))
	}
	if _, ok := opts["body"]; !ok && carriesBody(method) {
		body, err := defaultBody(ctx, job)
		if err != nil {
			return err
		}
		opts = maps.Clone(opts)
		opts["body"] = body
	}
	reqCtx, cancel := context.WithTimeoutCause(ctx, timeout, errTimedOut)
	defer cancel()
	req, err := newRequest(reqCtx, method, job.Task.URL, opts)
	if err != nil {
		return spool.Permanent(err)
	}
	client := h.direct
	if method == http.MethodGet || method == http.MethodHead {
		client = h.follow
	}
	resp, err := client.Do(req)
	if err != nil {
		return sendError(ctx, reqCtx, timeout, err)
	}
	defer resp.Body.Close()
	if err := statusError(resp); err != nil {
		return err
	}
	body, err := h.readBody(resp)
	if err != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(reqCtx), errTimedOut) {
			return fmt.Errorf("read response: timed out after %s", timeout)
		}
		return err
	}
	out := &httpOutput{Status: resp.StatusCode, URL: resp.Request.URL.String(),
		Headers: flatHeaders(resp.Header), Size: len(body)}
	out.Body, out.BodyEncoding = decodeBody(resp.Header.Get("Content-Type"), body)
	return job.SetOutput(out)
}

// carriesBody reports whether requests of method get the default body:
// GET, HEAD and DELETE send none unless the body option says.
func carriesBody(method string) bool {
	switch strings.ToUpper(method) {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	return false
}

// defaultBody is what a POST, PUT or PATCH without a body option sends:
// in a workflow, its results so far (Job.WorkflowResults), so that a
// step can report what the steps before it made; outside one, the task
// itself.
func defaultBody(ctx context.Context, job *spool.Job) (any, error) {
	if job.Task.ParentID == "" {
		return job.Task, nil
	}
	r, err := job.WorkflowResults(ctx)
	if err != nil {
		return nil, fmt.Errorf("read workflow results: %w", err)
	}
	return r, nil
}

// newRequest builds the task's request from its options.
func newRequest(ctx context.Context, method, url string, opts map[string]any) (*http.Request, error) {
	headers, _ := opts["headers"].(map[string]any)
	var body io.Reader
	contentType := ""
	switch b := opts["body"].(type) {
	case nil:
	case string:
		body, contentType = strings.NewReader(b), "text/plain; charset=utf-8"
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode body: %w", err)
		}
		body, contentType = bytes.NewReader(enc), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	// Create refuses these headers; a task stored before it did must not
	// send them either.
	if err := checkHeaders(headers); err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for name, v := range headers {
		value, _ := v.(string)
		req.Header.Set(name, value)
	}
	return req, nil
}

// checkHeaders applies the built-in http spec's check of the headers
// option (no Host, no hop-by-hop headers, no line breaks), so that both
// checks stay the same.
func checkHeaders(headers map[string]any) error {
	spec, _ := spool.BuiltinSpec(spool.KindHTTP)
	o, ok := spec.Option("headers")
	if !ok || o.Check == nil {
		return errors.New("the http kind's spec has no check of its headers")
	}
	return o.Check(headers)
}

// sendError classifies an error of Client.Do: Permanent when another
// attempt would meet it again.
func sendError(ctx, reqCtx context.Context, timeout time.Duration, err error) error {
	var certErr *tls.CertificateVerificationError
	switch {
	case ctx.Err() != nil:
		// The task was cancelled, timed out or the engine is shutting
		// down: the engine tells which from ctx's cause.
		return fmt.Errorf("send request: %w", err)
	case errors.Is(context.Cause(reqCtx), errTimedOut):
		return fmt.Errorf("send request: timed out after %s", timeout)
	case errors.Is(err, safehttp.ErrForbiddenAddress), errors.Is(err, safehttp.ErrUnsupportedScheme),
		errors.Is(err, safehttp.ErrTooManyRedirects), errors.As(err, &certErr):
		return spool.Permanent(fmt.Errorf("send request: %w", err))
	}
	return fmt.Errorf("send request: %w", err)
}

// statusError fails on a 4xx or 5xx response, quoting the start of its
// body; it is Permanent unless a retry may get another answer.
func statusError(resp *http.Response) error {
	code := resp.StatusCode
	if code < 400 {
		return nil
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLen+1))
	err := fmt.Errorf("request returned %s%s", resp.Status, quoteBody(head))
	if code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests {
		return err
	}
	return spool.Permanent(err)
}

// errorBodyLen is how much of an error response's body an error quotes.
const errorBodyLen = 200

// quoteBody returns ": " and the start of an error response's body, for
// the task's error, or "" when the body is empty or not text.
func quoteBody(b []byte) string {
	cut := len(b) > errorBodyLen
	if cut {
		b = b[:errorBodyLen]
	}
	// Cutting may split a rune: drop the pieces rather than refuse the text.
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "")), " ")
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return ""
	}
	if cut {
		s += "…"
	}
	return ": " + s
}

// readBody reads the response body up to the size limit.
func (h *httpHandler) readBody(resp *http.Response) ([]byte, error) {
	tooLarge := spool.Permanent(fmt.Errorf("read response: body larger than %d bytes "+
		"(kinds.Config.HTTPMaxBodySize, in Go; spool serve and spool run have no flag for it)", h.maxBody))
	if resp.ContentLength > h.maxBody {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, h.maxBody+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read response: %w", err)
	case int64(len(b)) > h.maxBody:
		return nil, tooLarge
	}
	return b, nil
}

// decodeBody returns a body as it goes in the output, and its encoding
// when it is not the body itself.
func decodeBody(contentType string, b []byte) (any, string) {
	if len(b) == 0 {
		return nil, ""
	}
	if isJSON(contentType) && json.Valid(b) {
		return json.RawMessage(b), ""
	}
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

// isJSON reports whether a Content-Type is application/json or a +json type.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// flatHeaders returns the headers with lower-case names, as HTTP/2 sends
// them, and each header's values joined with ", " (RFC 9110, section 5.3).
func flatHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for name, values := range h {
		out[strings.ToLower(name)] = strings.Join(values, ", ")
	}
	return out
}
