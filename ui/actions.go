package ui

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/internal/serve"
)

// cancel is POST /tasks/{id}/cancel.
func (h *handler) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.e.Cancel(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, h.prefix+"/tasks/"+url.PathEscape(id), http.StatusSeeOther)
}

// retry is POST /tasks/{id}/retry: a new task with the same request.
func (h *handler) retry(w http.ResponseWriter, r *http.Request) {
	t, err := h.e.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	s, _ := sessionFrom(r.Context())
	nt, err := h.e.Create(r.Context(), retryRequest(t, s.user))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, h.prefix+"/tasks/"+url.PathEscape(nt.ID), http.StatusSeeOther)
}

// retryRequest rebuilds the request that created t. Its options hold the
// defaults filled in then, which is what the task ran with. A workflow's
// step becomes a task of its own, on the input it had.
func retryRequest(t *spool.Task, user string) spool.Request {
	opts := maps.Clone(t.Options)
	str := func(k string) string {
		v, _ := opts[k].(string)
		delete(opts, k)
		return v
	}
	req := spool.Request{Kind: t.Kind, URL: t.URL, FileID: t.FileID, WebhookURL: t.WebhookURL,
		Ref: str("ref"), Filename: str("filename"), Folder: str("folder"),
		Options: opts, CreatedBy: user}
	if t.Kind == spool.KindWorkflow {
		// A step's Steps are its next steps, which a task of its own
		// would not run.
		req.Workflow = t.Steps
	}
	if req.URL == "" && req.FileID == "" && t.Input != nil && t.Input.ID != "" && t.Kind != spool.KindHTTP {
		req.FileID = t.Input.ID
	}
	return req
}

// delete is POST /tasks/{id}/delete: finished tasks only.
func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.e.Delete(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, h.prefix+"/tasks", http.StatusSeeOther)
}

// fileContent is GET /files/{id}/content: a file's bytes, with Range.
func (h *handler) fileContent(w http.ResponseWriter, r *http.Request) {
	f, rs, err := h.e.OpenFile(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer rs.Close()
	serve.File(w, r, f, rs)
}

// newPage is GET /new: the create form, one fieldset of options per kind.
func (h *handler) newPage(w http.ResponseWriter, r *http.Request) {
	h.renderNew(w, r, http.StatusOK, url.Values{"kind": {r.URL.Query().Get("kind")}}, "")
}

func (h *handler) renderNew(w http.ResponseWriter, r *http.Request, status int, form url.Values, msg string) {
	h.render(w, r, status, "new", map[string]any{"Title": "New task", "Nav": "new",
		"Kinds": h.e.Kinds(r.Context()), "Form": form, "Error": msg})
}

// create is POST /tasks: the create form, as multipart with an optional
// file upload. Options are the fields "opt.KIND.NAME" of the chosen kind;
// empty ones are left out so that defaults apply.
func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// ServeHTTP parsed the form when it checked the CSRF token.
	if err := r.ParseMultipartForm(32 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		h.renderNew(w, r, http.StatusBadRequest, url.Values{}, "The form could not be read: "+err.Error())
		return
	}
	if r.MultipartForm != nil {
		defer r.MultipartForm.RemoveAll()
	}
	form := r.PostForm
	s, _ := sessionFrom(ctx)
	req, msg := formRequest(h.e.Kinds(ctx), form)
	if msg != "" {
		h.renderNew(w, r, http.StatusBadRequest, form, msg)
		return
	}
	req.CreatedBy = s.user
	if file, fh, err := r.FormFile("file"); err == nil {
		defer file.Close()
		if fh.Size > 0 {
			if req.URL != "" {
				h.renderNew(w, r, http.StatusBadRequest, form, "Give a URL or a file, not both.")
				return
			}
			p := &spool.FileParams{Filename: fh.Filename, CreatedBy: s.user}
			if mt, _, err := mime.ParseMediaType(fh.Header.Get("Content-Type")); err == nil && mt != "application/octet-stream" {
				p.Type = mt
			}
			f, err := h.e.CreateFile(ctx, file, p)
			if err != nil {
				if !spool.IsPermanent(err) {
					h.fail(w, r, err)
					return
				}
				h.renderNew(w, r, http.StatusBadRequest, form, "The file could not be read: "+err.Error())
				return
			}
			req.FileID = f.ID
		}
	}
	t, err := h.e.Create(ctx, req)
	if err != nil {
		var ve *spool.ValidationError
		if errors.As(err, &ve) {
			if req.FileID != "" {
				// The form's upload was for this refused task only, and
				// the user sends it again with the corrected form.
				if derr := h.e.DeleteFile(context.WithoutCancel(ctx), req.FileID); derr != nil {
					h.log.WarnContext(ctx, "ui: delete the upload of a refused task", "file", req.FileID, "err", derr)
				}
			}
			h.renderNew(w, r, http.StatusBadRequest, form, ve.Error())
			return
		}
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, h.prefix+"/tasks/"+url.PathEscape(t.ID), http.StatusSeeOther)
}

// formRequest builds a request from the create form, or says what is
// wrong with it.
func formRequest(kinds []spool.KindInfo, form url.Values) (spool.Request, string) {
	req := spool.Request{Kind: form.Get("kind"), URL: strings.TrimSpace(form.Get("url")),
		Ref: form.Get("ref"), Folder: form.Get("folder"), Filename: form.Get("filename"),
		WebhookURL: strings.TrimSpace(form.Get("webhook_url")), Options: map[string]any{}}
	var spec *spool.KindSpec
	for _, k := range kinds {
		if k.Kind == req.Kind {
			spec = k.Spec
		}
	}
	if req.Kind == "" {
		return req, "Choose a kind."
	}
	if wf := strings.TrimSpace(form.Get("workflow")); wf != "" && req.Kind == spool.KindWorkflow {
		if err := json.Unmarshal([]byte(wf), &req.Workflow); err != nil {
			return req, "workflow: " + err.Error()
		}
	}
	if spec == nil {
		return req, ""
	}
	for _, o := range spec.Options {
		raw := strings.TrimSpace(form.Get("opt." + req.Kind + "." + o.Name))
		if raw == "" {
			continue
		}
		v, err := parseOption(o, raw)
		if err != nil {
			return req, o.Name + ": " + err.Error()
		}
		req.Options[o.Name] = v
	}
	return req, ""
}

// parseOption reads a form field as the option's type; Create validates
// the value's range.
func parseOption(o spool.OptionSpec, raw string) (any, error) {
	switch o.Type {
	case spool.TypeInt:
		if o.Percent && strings.HasSuffix(raw, "%") {
			return raw, nil
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, errors.New("must be a whole number")
		}
		return n, nil
	case spool.TypeNumber:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, errors.New("must be a number")
		}
		return n, nil
	case spool.TypeBool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, errors.New("must be true or false")
		}
		return b, nil
	case spool.TypeObject, spool.TypeList, spool.TypeAny:
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			if o.Type == spool.TypeAny {
				return raw, nil // a body may be plain text
			}
			return nil, errors.New("must be JSON: " + err.Error())
		}
		return v, nil
	}
	return raw, nil
}
