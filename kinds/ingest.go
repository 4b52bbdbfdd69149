package kinds

import (
	"context"
	"errors"
	"fmt"

	"github.com/spoolrun/spool"
)

// ingestHandler runs the ingest kind: it fetches the task's input and
// completes with the input's file record as the output.
//
// A url input is downloaded through the engine's SSRF-safe client, stored
// and probed by Job.InputPath; the new record gets the request's filename,
// folder and ref (its filename otherwise comes from the url's path), and
// is stored with the completion, so the output, the task's input and
// Engine.GetFile all return the same record.
//
// A file_id input is a record that already exists, and ingest does not
// change it: the output is that record, unless the request gives a
// filename, folder or ref that differs from the record's, in which case
// the output is a new file with the same bytes and those names.
//
// A download refused by the address policy, a 4xx answer or an oversized
// body fails the task at once; other download errors are retried.
type ingestHandler struct{}

func (h ingestHandler) Handle(ctx context.Context, job *spool.Job) error {
	if err := h.resolveKey(ctx, job); err != nil {
		return err
	}
	p, err := job.InputPath(ctx)
	if err != nil {
		// The engine's error already says what failed ("download input:
		// …") and is Permanent when a retry cannot help.
		return err
	}
	in := job.Input()
	names := namesOf(job.Task)
	out := in
	switch {
	case job.Task.FileID == "":
		// in is the record InputPath just made for this attempt, which the
		// engine stores with the outcome: it still can take the names.
		names.apply(in)
	case !names.matches(in):
		meta := *in
		meta.ID, meta.Key, meta.TaskID, meta.URL, meta.Created, meta.Updated = "", "", "", "", nil, nil
		names.apply(&meta)
		if out, err = job.CreateFileFromPath(ctx, p, &meta); err != nil {
			return err // already "spool: create file: …"
		}
	}
	// The download was the work; Job.InputPath reports no progress while
	// it runs.
	job.Progress(100)
	return job.SetOutput(out)
}

// resolveKey fills in the storage key of a file_id input. The engine
// stores a task's input record as JSON, which leaves out File.Key, so the
// claimed task's input has none and Job.InputPath cannot open it; the
// file's own record has it.
func (ingestHandler) resolveKey(ctx context.Context, job *spool.Job) error {
	in := job.Task.Input
	if job.Task.FileID == "" || in == nil || in.Key != "" {
		return nil
	}
	f, err := job.Engine().GetFile(ctx, job.Task.FileID)
	switch {
	case errors.Is(err, spool.ErrNotFound):
		return spool.Permanent(fmt.Errorf("read input file: %w", err))
	case err != nil:
		return fmt.Errorf("read input file: %w", err)
	}
	in.Key = f.Key
	return nil
}

// names are the request fields that name an output file; empty ones were
// not given.
type names struct{ filename, folder, ref string }

func namesOf(t *spool.Task) names {
	var n names
	n.filename, _ = t.Options["filename"].(string)
	n.folder, _ = t.Options["folder"].(string)
	n.ref, _ = t.Options["ref"].(string)
	return n
}

// apply sets the given names on f.
func (n names) apply(f *spool.File) {
	if n.filename != "" {
		f.Filename = n.filename
	}
	if n.folder != "" {
		f.Folder = n.folder
	}
	if n.ref != "" {
		f.Ref = n.ref
	}
}

// matches reports whether f already has every given name.
func (n names) matches(f *spool.File) bool {
	return (n.filename == "" || n.filename == f.Filename) &&
		(n.folder == "" || n.folder == f.Folder) &&
		(n.ref == "" || n.ref == f.Ref)
}
