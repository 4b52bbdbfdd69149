package spool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spoolrun/spool/internal/dirstore"
)

// openStorage returns the engine's Storage, creating the default directory
// on first use.
func (e *Engine) openStorage() (Storage, error) {
	e.storageOnce.Do(func() {
		if e.cfg.Storage != nil {
			e.storage = e.cfg.Storage
			return
		}
		dir := e.cfg.DataDir
		if dir == "" {
			if e.cfg.Store != nil || e.cfg.Path == ":memory:" {
				if dir, e.storageErr = os.MkdirTemp("", "spool-files-"); e.storageErr != nil {
					return
				}
				e.tempDir = dir
			} else {
				dir = e.cfg.Path + ".files"
			}
		}
		e.storage, e.storageErr = dirstore.New(dir)
	})
	if e.storageErr != nil {
		return nil, fmt.Errorf("spool: open storage: %w", e.storageErr)
	}
	return e.storage, nil
}

// Storage returns the engine's file storage, opening the default directory
// if needed.
func (e *Engine) Storage() (Storage, error) { return e.openStorage() }

// FileParams describes a file given to CreateFile. Its zero value is fine:
// everything is probed.
type FileParams struct {
	Filename string // defaults to "data"
	Folder   string
	Ref      string
	Type     string // MIME type; defaults to the probed one
	// CreatedBy is recorded as the file's creator (File.CreatedBy).
	// Defaults to Config.CreatedBy.
	CreatedBy string
}

// CreateFile stores r's bytes as a new file (an upload), probes them and
// records the file, which tasks can then take as file_id input.
func (e *Engine) CreateFile(ctx context.Context, r io.Reader, p *FileParams) (*File, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	var fp FileParams
	if p != nil {
		fp = *p
	}
	if err := checkNames("", fp.Filename, fp.Folder); err != nil {
		return nil, err
	}
	// In characters, as for a task's ref.
	if utf8.RuneCountInString(fp.Ref) > maxRefLen {
		return nil, invalid("ref", "longer than %d characters", maxRefLen)
	}
	f, err := e.putFile(ctx, r, &File{Object: "source", Filename: fp.Filename, Folder: fp.Folder,
		Ref: fp.Ref, Type: fp.Type, CreatedBy: cmp.Or(fp.CreatedBy, e.cfg.CreatedBy)}, "")
	if err != nil {
		return nil, err
	}
	if err := e.store.CreateFiles(ctx, []*File{f}); err != nil {
		e.dropBytes(f)
		return nil, fmt.Errorf("spool: create file: %w", err)
	}
	return f, nil
}

// putFile writes the bytes of a new file to storage and probes them. The
// record is the caller's to store; until it is, the bytes are an orphan
// that the sweeper deletes once they are OrphanFileAge old.
func (e *Engine) putFile(ctx context.Context, r io.Reader, meta *File, taskID string) (*File, error) {
	st, err := e.openStorage()
	if err != nil {
		return nil, err
	}
	f := *meta
	now := time.Now().UTC()
	f.ID = e.ids.next("file_", now)
	if f.Filename == "" {
		f.Filename = "data"
	}
	// A task's files live under its id, so that the sweeper can tell the
	// files of a task still running (not recorded yet, but not orphans).
	f.Key = f.ID + "/" + f.Filename
	if taskID != "" {
		f.Key = taskID + "/" + f.Key
	}
	f.TaskID = taskID
	f.Created, f.Updated = &now, &now
	if _, err := st.Put(ctx, f.Key, r); err != nil {
		return nil, fmt.Errorf("spool: store file: %w", err)
	}
	if err := e.probeInto(ctx, st, &f); err != nil {
		e.dropBytes(&f)
		return nil, err
	}
	return &f, nil
}

// probeInto fills f's media fields from its bytes; fields already set win.
func (e *Engine) probeInto(ctx context.Context, st Storage, f *File) error {
	p, cleanup, err := localCopy(ctx, st, f.Key, path.Ext(f.Filename))
	if err != nil {
		return err
	}
	defer cleanup()
	got, err := e.prober().Probe(ctx, p)
	if err != nil {
		return Permanent(fmt.Errorf("probe %s: %w", f.Filename, err))
	}
	merge(f, got)
	return nil
}

// merge copies the probed fields that f does not set itself.
func merge(f, probed *File) {
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	set(&f.Kind, probed.Kind)
	set(&f.Type, probed.Type)
	set(&f.Codec, probed.Codec)
	set(&f.Container, probed.Container)
	set(&f.Orientation, probed.Orientation)
	set(&f.Language, probed.Language)
	if f.Width == 0 && f.Height == 0 {
		f.Width, f.Height = probed.Width, probed.Height
	}
	if f.Duration == 0 {
		f.Duration = probed.Duration
	}
	if f.FPS == 0 {
		f.FPS = probed.FPS
	}
	if f.Bitrate == 0 {
		f.Bitrate = probed.Bitrate
	}
	if f.Rotation == 0 {
		f.Rotation = probed.Rotation
	}
	f.Transparency = f.Transparency || probed.Transparency
	f.Animated = f.Animated || probed.Animated
	if f.Frames == 0 {
		f.Frames = probed.Frames
	}
	f.Filesize = probed.Filesize
	if f.Metadata == nil {
		f.Metadata = probed.Metadata
	}
}

// localCopy returns a local path to a stored key: the storage's own file
// when it has one, else a temporary copy that cleanup removes.
func localCopy(ctx context.Context, st Storage, key, ext string) (p string, cleanup func(), err error) {
	if lp, ok := st.(LocalPather); ok {
		if p, err := lp.LocalPath(key); err == nil {
			return p, func() {}, nil
		}
	}
	r, err := st.Open(ctx, key)
	if err != nil {
		return "", nil, fmt.Errorf("spool: open file bytes: %w", err)
	}
	defer r.Close()
	tmp, err := os.CreateTemp("", "spool-*"+ext)
	if err != nil {
		return "", nil, err
	}
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", nil, fmt.Errorf("spool: copy file bytes: %w", err)
	}
	tmp.Close()
	return tmp.Name(), func() { os.Remove(tmp.Name()) }, nil
}

// dropBytes deletes the bytes of a file whose record will not be stored.
func (e *Engine) dropBytes(f *File) {
	st, err := e.openStorage()
	if err != nil || f.Key == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Delete(ctx, f.Key); err != nil {
		e.log.Warn("spool: delete unrecorded file bytes", "key", f.Key, "err", err)
	}
}

// GetFile returns a file record, or an error matching ErrNotFound.
func (e *Engine) GetFile(ctx context.Context, id string) (*File, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	f, err := e.store.GetFile(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("spool: get file: %w", err)
	}
	return f, nil
}

// ListFiles returns file records, newest first. A nil p lists the 20 newest.
func (e *Engine) ListFiles(ctx context.Context, p *FileListParams) ([]*File, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	var lp FileListParams
	if p != nil {
		lp = *p
	}
	var err error
	if lp.Limit, err = pageLimit(lp.Limit); err != nil {
		return nil, err
	}
	if lp.After != "" && !isID(lp.After, "file_") {
		return nil, invalid("after", "%q is not a file id", lp.After)
	}
	fs, err := e.store.ListFiles(ctx, &lp)
	if err != nil {
		return nil, fmt.Errorf("spool: list files: %w", err)
	}
	return fs, nil
}

// OpenFile returns a file's record and its bytes. Close the reader.
func (e *Engine) OpenFile(ctx context.Context, id string) (*File, io.ReadSeekCloser, error) {
	f, err := e.GetFile(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	st, err := e.openStorage()
	if err != nil {
		return nil, nil, err
	}
	r, err := st.Open(ctx, f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("spool: open file %s: %w", id, err)
	}
	return f, r, nil
}

// DeleteFile deletes a file's record, then its bytes. A crash in between
// leaves bytes that the sweeper deletes later. It deletes nothing and fails
// with an error matching ErrFileInUse while a task that has not finished
// takes the file as input (a workflow's, its steps', a task's on file_id,
// the input a url task fetched and may be retried on):
// cancel the task, or wait for it, first.
func (e *Engine) DeleteFile(ctx context.Context, id string) error {
	f, err := e.GetFile(ctx, id)
	if err != nil {
		return err
	}
	if err := e.store.DeleteFile(ctx, id); err != nil {
		return fmt.Errorf("spool: delete file: %w", err)
	}
	st, err := e.openStorage()
	if err != nil {
		return err
	}
	if err := st.Delete(ctx, f.Key); err != nil {
		return fmt.Errorf("spool: delete file bytes %s: %w", id, err)
	}
	return nil
}

// sweep deletes stored bytes that have no file record and are older than
// OrphanFileAge: outputs of attempts that crashed before completing.
func (e *Engine) sweep(ctx context.Context) (int, error) {
	if e.cfg.Storage == nil && e.cfg.DataDir == "" {
		// A temporary directory is this engine's alone, and it deletes the
		// bytes of every unrecorded file itself; the directory beside the
		// database is swept if it exists.
		if e.cfg.Store != nil || e.cfg.Path == ":memory:" {
			return 0, nil
		}
		if _, err := os.Stat(e.cfg.Path + ".files"); errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
	}
	st, err := e.openStorage()
	if err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-e.cfg.OrphanFileAge)
	n := 0
	err = st.Walk(ctx, func(key string, mod time.Time) error {
		id, rest, _ := strings.Cut(key, "/")
		if isID(id, "task_") {
			t, err := e.store.GetTask(ctx, id)
			if err == nil && !t.Status.Terminal() {
				return nil // its task may still record it
			}
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			id, _, _ = strings.Cut(rest, "/")
		}
		if !mod.Before(cutoff) || !isID(id, "file_") {
			return nil
		}
		if _, err := e.store.GetFile(ctx, id); !errors.Is(err, ErrNotFound) {
			return err // recorded (nil), or the lookup failed
		}
		if err := st.Delete(ctx, key); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("sweep files: %w", err)
	}
	return n, nil
}

// removeTempDir removes the temporary data directory at Close.
func (e *Engine) removeTempDir() error {
	if e.tempDir == "" {
		return nil
	}
	return os.RemoveAll(filepath.Clean(e.tempDir))
}
