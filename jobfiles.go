package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/spoolrun/spool/internal/dirstore"
	"github.com/spoolrun/spool/internal/safehttp"
)

// Input returns the task's input file: the record of a file_id input; for
// a url input, {object: source, url} until InputPath has fetched it, then
// the probed File. It is nil for kinds without an input.
func (j *Job) Input() *File {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fetched != nil {
		return j.fetched
	}
	return j.Task.Input
}

// InputPath returns a local path to the input's bytes, which stays valid
// until the handler returns. A url input is downloaded first (through the
// SSRF-safe client), stored as a file and probed; later calls in the same
// attempt reuse it. A refused address, a 4xx answer or a body over the size
// limit is a Permanent error; other download errors are retried.
func (j *Job) InputPath(ctx context.Context) (string, error) {
	in := j.Input()
	if in == nil {
		return "", Permanent(fmt.Errorf("spool: task %s has no input", j.Task.ID))
	}
	switch {
	case in.ID == "":
		f, err := j.fetch(ctx, in.URL)
		if err != nil {
			return "", err
		}
		in = f
	case in.Key == "":
		// The task's copy of a file_id input lacks where the bytes are.
		f, err := j.e.store.GetFile(ctx, in.ID)
		if err != nil {
			return "", Permanent(fmt.Errorf("spool: input file %s: %w", in.ID, err))
		}
		in = f
	}
	st, err := j.e.openStorage()
	if err != nil {
		return "", err
	}
	p, cleanup, err := localCopy(ctx, st, in.Key, path.Ext(in.Filename))
	if err != nil {
		return "", err
	}
	j.mu.Lock()
	j.cleanups = append(j.cleanups, cleanup)
	j.mu.Unlock()
	return p, nil
}

// fetch downloads a url input into storage and probes it. The record is
// stored with the attempt's outcome.
func (j *Job) fetch(ctx context.Context, raw string) (*File, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, Permanent(fmt.Errorf("input url: %w", err))
	}
	name := path.Base(u.Path)
	if name == "." || name == "/" || strings.ContainsAny(name, `\`) {
		name = "input"
	}
	meta := &File{Object: "source", URL: raw, Original: raw, Filename: name}
	var (
		body    io.Reader
		fetched chan error // the download's own error, when there is one
	)
	if u.Scheme == "file" {
		if !j.e.cfg.AllowLocalFiles {
			return nil, Permanent(errors.New("input url: file URLs are not allowed (" + localFilesHint + ")"))
		}
		lf, err := os.Open(u.Path)
		if err != nil {
			return nil, Permanent(fmt.Errorf("input url: %w", err))
		}
		defer lf.Close()
		body = lf
	} else {
		pr, pw := io.Pipe()
		fetched = make(chan error, 1)
		go func() {
			_, _, err := j.e.httpClient().Download(ctx, raw, &downloadProgress{w: pw, job: j})
			pw.CloseWithError(err)
			fetched <- err
		}()
		defer pr.Close()
		body = pr
	}
	f, err := j.e.putFile(ctx, body, meta, j.Task.ID)
	if err != nil {
		if fetched != nil {
			// The storage's error wraps the download's in its own words
			// ("store file: put …"): the download's alone says what went
			// wrong. Closing the pipe ends a download still writing.
			body.(*io.PipeReader).Close()
			if derr := <-fetched; derr != nil && !errors.Is(derr, io.ErrClosedPipe) {
				err = derr
			}
		}
		return nil, downloadError(u, err)
	}
	j.mu.Lock()
	j.fetched = f
	j.base = downloadShare
	j.mu.Unlock()
	j.report(downloadShare)
	return f, nil
}

// downloadShare is the part of a task's progress that the download of its
// url input takes: the handler's own Progress(p) then counts from there
// (downloadShare + p × (100 - downloadShare) / 100).
const downloadShare = 10

// downloadProgress passes a download on to w and reports its progress,
// when the response says how big the body is, as the first downloadShare
// percent of the task's.
type downloadProgress struct {
	w          io.Writer
	job        *Job
	size, done int64
}

func (d *downloadProgress) ExpectSize(n int64) { d.size = n }

func (d *downloadProgress) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	d.done += int64(n)
	if d.size > 0 {
		d.job.report(int(int64(downloadShare) * min(d.done, d.size) / d.size))
	}
	return n, err
}

// downloadError says why the download of input u failed, in words for the
// task's error ("download input https://host/a.mp4: the server answered
// 404 Not Found"), and marks the failures that retrying cannot fix.
func downloadError(u *url.URL, err error) error {
	shown := *u // a query or user info may hold a secret
	shown.User, shown.RawQuery, shown.Fragment = nil, "", ""
	reason := err.Error()
	var (
		se *safehttp.StatusError
		ue *url.Error
	)
	switch {
	case errors.As(err, &se):
		reason = "the server answered " + se.Status
	case errors.As(err, &ue) && !errors.Is(err, safehttp.ErrForbiddenAddress):
		reason = ue.Err.Error() // not Get "URL" again
	}
	err = &inputError{msg: "download input " + shown.String() + ": " + reason, err: err}
	switch {
	case errors.Is(err, safehttp.ErrForbiddenAddress), errors.Is(err, safehttp.ErrTooLarge),
		errors.Is(err, safehttp.ErrUnsupportedScheme), errors.Is(err, safehttp.ErrTooManyRedirects):
		return Permanent(err)
	case se != nil && se.StatusCode >= 400 && se.StatusCode < 500 && se.StatusCode != 408 && se.StatusCode != 429:
		return Permanent(err)
	}
	return err
}

// inputError is a failed download's error: its own message, and the
// cause for errors.Is and As.
type inputError struct {
	msg string
	err error
}

func (e *inputError) Error() string { return e.msg }
func (e *inputError) Unwrap() error { return e.err }

// httpClient returns the engine's SSRF-safe client for downloads.
func (e *Engine) httpClient() *safehttp.Client {
	e.httpOnce.Do(func() {
		cfg := safehttp.DownloadConfig()
		cfg.AllowPrivate = e.cfg.AllowPrivateNetworks
		cfg.Allow = e.cfg.AllowNetworks
		e.http = safehttp.NewClient(cfg)
	})
	return e.http
}

// TempDir returns a directory for the work files of this attempt, such as
// the file a program writes before CreateFileFromPath stores it. It is
// created on the first call, in the engine's data directory when the
// storage is the default local one (so that the work stays on the disk the
// files go to), else in the system's temporary directory; later calls
// return the same directory. It is removed, with everything in it, when
// the handler returns, whatever the outcome.
func (j *Job) TempDir() (string, error) {
	j.mu.Lock()
	dir := j.tempDir
	j.mu.Unlock()
	if dir != "" {
		return dir, nil
	}
	st, err := j.e.openStorage()
	if err != nil {
		return "", err
	}
	if d, ok := st.(*dirstore.Dir); ok {
		dir, err = d.TempDir("job-")
	} else {
		dir, err = os.MkdirTemp("", "spool-job-")
	}
	if err != nil {
		return "", fmt.Errorf("spool: make temp dir: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.tempDir != "" { // a concurrent call won
		os.Remove(dir)
		return j.tempDir, nil
	}
	j.tempDir = dir
	j.cleanups = append(j.cleanups, func() { os.RemoveAll(dir) })
	return dir, nil
}

// CreateFile writes an output file of the task from r, probes it, and
// returns its record. The record is stored in the same transaction as the
// task's completion; if the task does not complete, the bytes are deleted.
// Fields set in meta (Filename, Ref, Kind…) win over probed ones. Without a
// SetOutput call, a task's output is its one output file, or the list of
// them.
func (j *Job) CreateFile(ctx context.Context, r io.Reader, meta *File) (*File, error) {
	var m File
	if meta != nil {
		m = *meta
	}
	if err := checkPath("filename", m.Filename, maxNameLen); err != nil || strings.Contains(m.Filename, "/") {
		return nil, fmt.Errorf("spool: create file: bad filename %q", m.Filename)
	}
	if m.Object == "" {
		m.Object = "source"
	}
	if m.Ref == "" {
		m.Ref, _ = j.Task.Options["ref"].(string)
	}
	if m.Folder == "" {
		m.Folder, _ = j.Task.Options["folder"].(string)
	}
	f, err := j.e.putFile(ctx, r, &m, j.Task.ID)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	j.outputs = append(j.outputs, f)
	j.mu.Unlock()
	return f, nil
}

// CreateFileFromPath is CreateFile reading a local file, such as one that
// ffmpeg wrote. The filename defaults to the path's base name.
func (j *Job) CreateFileFromPath(ctx context.Context, p string, meta *File) (*File, error) {
	src, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("spool: create file: %w", err)
	}
	defer src.Close()
	var m File
	if meta != nil {
		m = *meta
	}
	if m.Filename == "" {
		m.Filename = path.Base(p)
	}
	return j.CreateFile(ctx, src, &m)
}

// Files returns the output files created so far.
func (j *Job) Files() []*File {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]*File(nil), j.outputs...)
}

// record adds to an outcome the files of the attempt: the fetched input
// always, the outputs on completion (their bytes are deleted otherwise). It
// returns the files the change records, whose bytes must go if the store
// refuses the change.
func (j *Job) record(ch *Change) []*File {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range j.cleanups {
		c()
	}
	j.cleanups = nil
	var keep []*File
	if j.fetched != nil {
		keep = append(keep, j.fetched)
		ch.Input = j.fetched
	}
	if ch.To == StatusCompleted {
		keep = append(keep, j.outputs...)
		if ch.Output == nil {
			switch len(j.outputs) {
			case 0:
			case 1:
				ch.Output = mustJSON(j.outputs[0])
			default:
				ch.Output = mustJSON(j.outputs)
			}
		}
	} else {
		for _, f := range j.outputs {
			j.e.dropBytes(f)
		}
	}
	if len(keep) > 0 {
		ch.Hook = func(ctx context.Context, tx Tx, _ *Task) error {
			return tx.CreateFiles(ctx, keep)
		}
		ch.LateHook = true // new records, which no other change reads
	}
	return keep
}
