package spool

import (
	"cmp"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// The built-in kinds of the hosted API.
const (
	KindIngest      = "ingest"
	KindVideo       = "video"
	KindImage       = "image"
	KindAudio       = "audio"
	KindChapters    = "chapters"
	KindSubtitles   = "subtitles"
	KindThumbnails  = "thumbnails"
	KindNSFW        = "nsfw"
	KindSpeech      = "speech"
	KindDescription = "description"
	KindOutline     = "outline"
	KindPrompt      = "prompt"
	KindWorkflow    = "workflow"
	KindConditions  = "conditions"
	KindHTTP        = "http"
)

// spec returns the spec a kind's requests are checked against: the one its
// handler declares, else the built-in one. A custom kind whose handler
// declares none gets a nil spec: any options, an optional input. Built-in
// specs are built once per engine: Create and every read (typed) use them.
func (e *Engine) spec(kind string) (*KindSpec, bool) {
	e.mu.Lock()
	s, custom := e.specs[kind]
	_, registered := e.handlers[kind]
	e.mu.Unlock()
	if custom {
		return s, true
	}
	if c, ok := e.builtinSpecs.Load(kind); ok {
		s = c.(*KindSpec)
	} else {
		s, _ = BuiltinSpec(kind) // nil for a kind that is not built in
		e.builtinSpecs.Store(kind, s)
	}
	if s != nil {
		return s, true
	}
	return nil, registered
}

// validateOptions checks options against a spec; a nil spec takes any
// JSON data. The result is what reading the stored options back gives, so
// that Create returns what Get will (see plainOptions).
func validateOptions(spec *KindSpec, opts map[string]any) (map[string]any, error) {
	if spec != nil {
		var err error
		if opts, err = spec.Validate(opts); err != nil {
			return nil, err
		}
	}
	return plainOptions(opts)
}

// newTask validates a request and builds the task it creates. Nothing is
// stored here.
func (e *Engine) newTask(r *Request, now time.Time) (*Task, error) {
	if r.Kind == "" {
		return nil, invalid("kind", "is required")
	}
	spec, ok := e.spec(r.Kind)
	if !ok {
		return nil, invalid("kind", "unknown kind %q: use one of %v or register a handler for it", r.Kind, BuiltinKinds())
	}
	input := InputOptional
	if spec != nil {
		input = spec.Input
	}
	policy := urlPolicy{allowFiles: e.cfg.AllowLocalFiles, allowPrivate: e.cfg.AllowPrivateNetworks,
		allow: e.cfg.AllowNetworks}
	switch {
	case input == InputNone:
		if r.FileID != "" {
			return nil, invalid("file_id", "kind %s takes no input file", r.Kind)
		}
		if r.URL == "" && r.Kind == KindHTTP {
			return nil, invalid("url", "is required: the request target of an http task")
		}
	case r.URL != "" && r.FileID != "":
		return nil, invalid("url", "give either url or file_id, not both")
	case input == InputRequired && r.URL == "" && r.FileID == "":
		return nil, invalid("url", "kind %s needs an input: give url or file_id", r.Kind)
	}
	if r.URL != "" {
		if err := policy.checkURL("url", r.URL, input != InputNone); err != nil {
			return nil, err
		}
	}
	if r.FileID != "" && !isID(r.FileID, "file_") {
		return nil, invalid("file_id", "%q is not a file id (file_ and 26 characters)", r.FileID)
	}
	if r.WebhookURL != "" {
		if err := policy.checkURL("webhook_url", r.WebhookURL, false); err != nil {
			return nil, err
		}
	}
	if err := checkNames("", r.Filename, r.Folder); err != nil {
		return nil, err
	}
	if !utf8.ValidString(r.Ref) {
		return nil, invalid("ref", "not valid UTF-8")
	}
	if utf8.RuneCountInString(r.Ref) > maxRefLen {
		return nil, invalid("ref", "longer than %d characters", maxRefLen)
	}
	if len(r.IdempotencyKey) > maxKeyLen {
		return nil, invalid("idempotency_key", "longer than %d bytes", maxKeyLen)
	}
	for name := range r.Options {
		if name == "" {
			return nil, invalid("options", "an option has an empty name")
		}
		for _, f := range requestFields {
			if name == f {
				return nil, invalid(name, "is a request field, not an option: set it on Request")
			}
		}
	}
	opts, err := validateOptions(spec, r.Options)
	if err != nil {
		return nil, err
	}
	var steps []Step
	switch {
	case r.Kind == KindWorkflow && len(r.Workflow) == 0:
		return nil, invalid("workflow", "is required: a workflow task needs at least one step")
	case r.Kind != KindWorkflow && r.Workflow != nil:
		return nil, invalid("workflow", "only a workflow task has steps")
	case r.Kind == KindWorkflow:
		c := &stepCheck{policy: policy}
		if steps, err = e.validateSteps("workflow", r.Workflow, 1, "", nil, c); err != nil {
			return nil, err
		}
	case r.Kind == KindConditions:
		if err := checkConditionProps(opts["conditions"], nil); err != nil {
			return nil, asValidation("conditions", err)
		}
	}
	if opts == nil {
		opts = map[string]any{}
	}
	for k, v := range map[string]string{"ref": r.Ref, "filename": r.Filename, "folder": r.Folder} {
		if v != "" {
			opts[k] = v
		}
	}
	if b, err := json.Marshal(opts); err != nil {
		return nil, invalid("options", "cannot be encoded as JSON: %v", err)
	} else if len(b) > maxOptionsSize {
		return nil, invalid("options", "larger than %d bytes", maxOptionsSize)
	}
	t := &Task{
		ID: e.ids.next("task_", now), Kind: r.Kind, Options: opts, Status: StatusPending,
		CreatedBy: cmp.Or(r.CreatedBy, e.cfg.CreatedBy), Created: now, Updated: now, URL: r.URL, FileID: r.FileID,
		WebhookURL: r.WebhookURL, IdempotencyKey: r.IdempotencyKey, Steps: steps,
		MaxAttempts: e.cfg.MaxAttempts,
	}
	if r.URL != "" && input != InputNone {
		t.Input = &File{Object: "source", URL: r.URL, Original: r.URL}
	}
	if !r.RunAt.IsZero() {
		if r.RunAt.Year() < 1970 || r.RunAt.Year() > 2200 {
			return nil, invalid("run_at", "must be a time between the years 1970 and 2200")
		}
		t.RunAt = r.RunAt.UTC()
		if t.RunAt.After(now) {
			t.Status = StatusWaiting
		}
	}
	return t, nil
}
