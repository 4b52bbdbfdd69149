package api

import (
	"bufio"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/internal/serve"
)

// uploadReadTime is how long an upload may take to arrive, beyond the
// server's ReadTimeout, which is meant for small JSON bodies.
const uploadReadTime = 30 * time.Minute

// uploadFile is POST /files: the bytes as the raw body, or as the part
// "file" of a multipart/form-data body. filename, folder and ref come
// from the query, or from form fields before the file part; a multipart
// file part's own filename is the default name.
func (h *handler) uploadFile(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(uploadReadTime))
	q := r.URL.Query()
	p := spool.FileParams{Filename: q.Get("filename"), Folder: q.Get("folder"), Ref: q.Get("ref"),
		CreatedBy: state(w).user}
	if r.ContentLength > h.maxUpload {
		h.failErr(w, r, &http.MaxBytesError{Limit: h.maxUpload}, "")
		return
	}
	body := http.MaxBytesReader(w, r.Body, h.maxUpload)
	var src io.Reader = body
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		part, ae := fileFromForm(body, params["boundary"], &p)
		if ae != nil {
			h.fail(w, r, ae)
			return
		}
		src = part
	case "", "application/octet-stream", "application/x-www-form-urlencoded":
		// No type worth recording: the probe tells. curl -d sends the
		// last one whatever the bytes are.
	default:
		p.Type = mt
	}
	// An empty upload is a mistake (a curl without --data-binary, a form
	// without its file), not a file anyone asked to store.
	peek := bufio.NewReader(src)
	if _, err := peek.Peek(1); err == io.EOF {
		field := "body"
		if mt == "multipart/form-data" {
			field = "file"
		}
		h.fail(w, r, badRequest(field, "is empty: send the file's bytes"))
		return
	}
	src2 := &readErr{r: peek}
	f, err := h.e.CreateFile(r.Context(), src2, &p)
	if err != nil {
		var mb *http.MaxBytesError
		if src2.err != nil && !errors.As(src2.err, &mb) && r.Context().Err() == nil {
			// The upload broke off (a truncated body, a read timeout):
			// the client's fault, not the server's.
			h.fail(w, r, badRequest("body", "could not be read to its end: %v", src2.err))
			return
		}
		if spool.IsPermanent(err) && !errors.As(err, &mb) {
			// The probe could not read the bytes: the upload's fault.
			err = &spool.ValidationError{Field: "file", Reason: err.Error()}
		}
		h.failErr(w, r, err, "")
		return
	}
	base := h.baseURL(r)
	w.Header().Set("Location", base+"/files/"+f.ID)
	h.writeJSON(w, r, http.StatusCreated, fileView(base, f))
}

// fileFromForm reads a multipart body up to its part "file", taking the
// fields filename, folder and ref found before it where the query did not
// set them.
func fileFromForm(body io.Reader, boundary string, p *spool.FileParams) (io.Reader, *apiError) {
	if boundary == "" {
		return nil, badRequest("Content-Type", "multipart/form-data needs a boundary")
	}
	mr := multipart.NewReader(body, boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, badRequest("file", "is required: the form has no part named file")
		}
		if err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				return nil, &apiError{status: http.StatusRequestEntityTooLarge, Error: Error{Kind: "request_too_large",
					Message: "the upload is larger than " + strconv.FormatInt(mb.Limit, 10) + " bytes"}}
			}
			return nil, badRequest("body", "is not a valid multipart form: %v", err)
		}
		name := part.FormName()
		if name == "file" {
			if p.Filename == "" {
				p.Filename = part.FileName()
			}
			if mt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type")); err == nil && mt != "application/octet-stream" {
				p.Type = mt
			}
			return part, nil
		}
		var dst *string
		switch name {
		case "filename":
			dst = &p.Filename
		case "folder":
			dst = &p.Folder
		case "ref":
			dst = &p.Ref
		}
		b, err := io.ReadAll(io.LimitReader(part, 4<<10))
		if err != nil {
			return nil, badRequest(name, "could not be read: %v", err)
		}
		if dst != nil && *dst == "" {
			*dst = string(b)
		}
	}
}

// listFiles is GET /files: a bare array, newest first, with a Link header
// whose next link holds the after cursor.
func (h *handler) listFiles(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lp := spool.FileListParams{Folder: q.Get("folder"), Ref: q.Get("ref"), TaskID: q.Get("task_id"), After: q.Get("after")}
	var ae *apiError
	if lp.Limit, ae = queryInt(q, "limit"); ae == nil && q.Has("limit") && lp.Limit == 0 {
		ae = badRequest("limit", "must be between 1 and 100")
	}
	if ae != nil {
		h.fail(w, r, ae)
		return
	}
	fs, err := h.e.ListFiles(r.Context(), &lp)
	if err != nil {
		h.failErr(w, r, err, "")
		return
	}
	if lp.Limit == 0 {
		lp.Limit = 20
	}
	base := h.baseURL(r)
	link := func(rel, after string) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "after" {
				v[k] = vs
			}
		}
		v.Set("limit", strconv.Itoa(lp.Limit))
		if after != "" {
			v.Set("after", after)
		}
		return "<" + base + "/files?" + v.Encode() + `>; rel="` + rel + `"`
	}
	links := link("self", lp.After) + ", " + link("first", "")
	if len(fs) == lp.Limit {
		links += ", " + link("next", fs[len(fs)-1].ID)
	}
	w.Header().Set("Link", links)
	out := make([]*spool.File, len(fs))
	for i, f := range fs {
		out[i] = fileView(base, f)
	}
	h.writeJSON(w, r, http.StatusOK, out)
}

// getFile is GET /files/{id}.
func (h *handler) getFile(w http.ResponseWriter, r *http.Request) {
	f, err := h.e.GetFile(r.Context(), r.PathValue("id"))
	if err != nil {
		h.failErr(w, r, err, "file_not_found")
		return
	}
	h.writeJSON(w, r, http.StatusOK, fileView(h.baseURL(r), f))
}

// fileContent is GET /files/{id}/content: the bytes, with Range and
// conditional requests. A file's bytes never change, so its id is its
// ETag.
func (h *handler) fileContent(w http.ResponseWriter, r *http.Request) {
	f, rs, err := h.e.OpenFile(r.Context(), r.PathValue("id"))
	if err != nil {
		h.failErr(w, r, err, "file_not_found")
		return
	}
	defer rs.Close()
	serve.File(w, r, f, rs)
}

// deleteFile is DELETE /files/{id}.
func (h *handler) deleteFile(w http.ResponseWriter, r *http.Request) {
	if err := h.e.DeleteFile(r.Context(), r.PathValue("id")); err != nil {
		h.failErr(w, r, err, "file_not_found")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readErr remembers the error its reader returned, other than io.EOF.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}
