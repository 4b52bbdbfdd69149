package spool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spoolrun/spool/internal/safehttp"
)

// Request is the body of a create call. It unmarshals the create body of the
// hosted API: the named fields below, and every other top-level field as a
// kind option.
type Request struct {
	Kind       string // required: a built-in kind or one with a registered handler
	URL        string // the input's URL; for the http kind, the request target
	FileID     string // an input file already known to spool (file_…)
	Filename   string // name of the output file
	Folder     string // folder of the output file
	Ref        string // a label for the output, at most 128 characters
	WebhookURL string // POSTed each event of the task (Config.Webhooks)
	Workflow   []Step // the steps of a workflow task
	Options    map[string]any

	// IdempotencyKey makes Create return the task first created with the
	// same key instead of creating another, if the request is the same
	// (after defaults and number forms: a replayed JSON body is); a
	// different request with a used key is refused with
	// ErrIdempotencyMismatch. Not in the hosted API.
	IdempotencyKey string
	// RunAt holds the task in waiting until then. Not in the hosted API.
	RunAt time.Time
	// CreatedBy is recorded as the task's creator instead of
	// Config.CreatedBy, for a server that knows who asks (package api sets
	// it to the name of the request's token). A create body never sets it.
	CreatedBy string `json:"-"`
}

// MaxIdempotencyKeyLen is the longest Request.IdempotencyKey, in bytes,
// that Create accepts.
const MaxIdempotencyKeyLen = 255

// Limits on a request's fields.
const (
	maxRefLen      = 128
	maxKeyLen      = MaxIdempotencyKeyLen
	maxNameLen     = 255
	maxFolderLen   = 1024
	maxURLLen      = 8192
	maxOptionsSize = 64 << 10
)

// requestFields are the top-level fields that are not kind options.
var requestFields = []string{"kind", "url", "file_id", "filename", "folder", "ref",
	"webhook_url", "workflow", "idempotency_key", "run_at"}

// UnmarshalJSON decodes a create body. A field of the wrong type is a
// *ValidationError naming it; numbers among the options decode as
// json.Number so that integers keep their precision.
func (r *Request) UnmarshalJSON(b []byte) error {
	fields, err := decodeObject(b)
	if err != nil {
		return &ValidationError{Field: "body", Reason: err.Error()}
	}
	var out Request
	strs := map[string]*string{"kind": &out.Kind, "url": &out.URL, "file_id": &out.FileID,
		"filename": &out.Filename, "folder": &out.Folder, "ref": &out.Ref,
		"webhook_url": &out.WebhookURL, "idempotency_key": &out.IdempotencyKey}
	for name, dst := range strs {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		delete(fields, name)
		if string(raw) == "null" {
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return invalid(name, "must be a string")
		}
	}
	if raw, ok := fields["run_at"]; ok {
		delete(fields, "run_at")
		if string(raw) != "null" {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return invalid("run_at", "must be an RFC 3339 time string")
			}
			if out.RunAt, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return invalid("run_at", "must be an RFC 3339 time like 2025-01-01T01:23:45Z")
			}
		}
	}
	if raw, ok := fields["workflow"]; ok {
		delete(fields, "workflow")
		if string(raw) != "null" {
			var err error
			if out.Workflow, err = decodeSteps(raw); err != nil {
				return asValidation("workflow", err)
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
	*r = out
	return nil
}

// MarshalJSON encodes the request as a create body, options at the top level.
func (r Request) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(r.Options)+10)
	maps.Copy(m, r.Options)
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("kind", r.Kind)
	set("url", r.URL)
	set("file_id", r.FileID)
	set("filename", r.Filename)
	set("folder", r.Folder)
	set("ref", r.Ref)
	set("webhook_url", r.WebhookURL)
	set("idempotency_key", r.IdempotencyKey)
	if !r.RunAt.IsZero() {
		m["run_at"] = r.RunAt.UTC().Format(time.RFC3339Nano)
	}
	if r.Workflow != nil {
		m["workflow"] = r.Workflow
	}
	return json.Marshal(m)
}

func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&fields); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// Not encoding/json's words, which name Go types.
			return nil, fmt.Errorf("must be a JSON object, not %s", jsonKind(te.Value))
		}
		return nil, fmt.Errorf("must be a JSON object: %v", err)
	}
	if fields == nil {
		return nil, fmt.Errorf("must be a JSON object, not null")
	}
	if d.More() {
		return nil, fmt.Errorf("has data after the JSON object")
	}
	return fields, nil
}

// jsonKind names a JSON value's kind, from encoding/json's
// UnmarshalTypeError.Value ("array", "number 3", "string", "bool").
func jsonKind(v string) string {
	switch {
	case v == "array":
		return "an array"
	case strings.HasPrefix(v, "number"):
		return "a number"
	case v == "bool":
		return "a boolean"
	}
	return "a " + v
}

func decodeValue(raw json.RawMessage) (any, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	return v, nil
}

// asValidation keeps a nested *ValidationError, its field under field
// (workflow[0] and width give workflow[0].width, conditions and [1].prop
// give conditions[1].prop), or names field as the culprit.
func asValidation(field string, err error) error {
	if ve, ok := err.(*ValidationError); ok {
		sep := "."
		if strings.HasPrefix(ve.Field, "[") {
			sep = ""
		}
		return &ValidationError{Field: field + sep + ve.Field, Reason: ve.Reason, Err: ve.Err}
	}
	return invalid(field, "%v", err)
}

// localFilesHint says, where a file URL is refused, what allows it: a Go
// Config field, which users of spool serve and its API cannot set.
const localFilesHint = "Config.AllowLocalFiles, in Go; spool serve has no such flag: upload the file (POST /files) and give its file_id"

// urlPolicy says which URLs a request may name.
type urlPolicy struct {
	allowFiles   bool // file:// inputs
	allowPrivate bool // loopback, private ranges and localhost
	allow        []netip.Prefix
}

// checkURL validates a URL field: absolute http(s) (or file:// where
// allowed), and no literal private address or localhost unless allowed.
// A hostname's addresses are checked again when it is dialled.
func (p urlPolicy) checkURL(field, raw string, files bool) error {
	if len(raw) > maxURLLen {
		return invalid(field, "longer than %d bytes", maxURLLen)
	}
	// Stored as JSON, which would turn each bad byte into U+FFFD: the task
	// would fetch another URL than the one asked for.
	if !utf8.ValidString(raw) {
		return invalid(field, "not valid UTF-8: percent-encode other bytes (%%FF)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid(field, "not a valid URL: %v", err)
	}
	switch u.Scheme {
	case "http", "https":
	case "file":
		if !files {
			return invalid(field, "file URLs are not allowed here: use http or https")
		}
		if !p.allowFiles {
			return invalid(field, "file URLs are not allowed (%s)", localFilesHint)
		}
		if u.Path == "" || u.Host != "" && u.Host != "localhost" {
			return invalid(field, "must be file:///absolute/path")
		}
		return nil
	case "":
		return invalid(field, "must be an absolute http or https URL")
	default:
		return invalid(field, "scheme %q is not allowed: use http or https", u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return invalid(field, "has no host")
	}
	if u.User != nil {
		return invalid(field, "must not contain credentials")
	}
	if p.allowPrivate {
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return invalid(field, "%s is a local address (allowed by Config.AllowPrivateNetworks, or spool serve and spool run --allow-private-networks)", host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		var ae *safehttp.AddressError
		if err := safehttp.CheckAddr(ip, safehttp.Config{Allow: p.allow}); errors.As(err, &ae) {
			return invalid(field, "%s is not a public address (%s); Config.AllowPrivateNetworks (or spool serve and spool run --allow-private-networks) allows it", host, ae.Reason)
		}
	}
	return nil
}

// checkNames checks an output's filename (a name, without slashes) and
// folder; prefix locates them in the request ("" or "workflow[0].").
func checkNames(prefix, filename, folder string) error {
	if err := checkPath(prefix+"filename", filename, maxNameLen); err != nil {
		return err
	}
	if strings.Contains(filename, "/") {
		return invalid(prefix+"filename", "must be a name without slashes")
	}
	return checkPath(prefix+"folder", folder, maxFolderLen)
}

// checkPath refuses names that could escape the storage directory, and
// names with control characters, which would end up in headers (such as
// Content-Disposition) and logs where they could break a line.
func checkPath(field, p string, max int) error {
	ctl := strings.IndexFunc(p, isControl)
	switch {
	case len(p) > max:
		return invalid(field, "longer than %d bytes", max)
	case !utf8.ValidString(p):
		return invalid(field, "not valid UTF-8")
	case strings.ContainsRune(p, 0):
		return invalid(field, "contains a NUL byte")
	case ctl >= 0:
		r, _ := utf8.DecodeRuneInString(p[ctl:])
		return invalid(field, "contains a control character or line break (%U)", r)
	case strings.ContainsRune(p, '\\'):
		return invalid(field, "contains a backslash")
	case strings.HasPrefix(p, "/"):
		return invalid(field, "must be a relative path")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return invalid(field, "must not contain %q segments", seg)
		}
	}
	return nil
}

// isControl reports whether r is a control character, C0 or C1 (tabs and
// line breaks included, U+0085 too), or a Unicode line or paragraph
// separator.
func isControl(r rune) bool {
	return r < 0x20 || r >= 0x7f && r <= 0x9f || r == '\u2028' || r == '\u2029'
}

// isID reports whether s is prefix + a 26-character ULID.
func isID(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) != 26 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') || c == 'I' || c == 'L' || c == 'O' || c == 'U' {
			return false // ULIDs are upper-case Crockford base32
		}
	}
	return rest[0] <= '7'
}
