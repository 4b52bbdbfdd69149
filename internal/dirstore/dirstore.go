// Package dirstore stores spool's file bytes in a local directory.
//
// Key "a/b.mp4" is the file root/a/b.mp4. Put writes into root/.tmp and then
// renames into place, so readers and crashes only ever see whole files; the
// top-level key segment ".tmp" is therefore reserved.
package dirstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// StaleTemp is the age at which Walk sweeps a temp file. A running Put keeps
// writing to its temp file, so only crash leftovers get that old (or a Put
// whose reader has stalled this long, which then fails).
const StaleTemp = time.Hour

const tmpDir = ".tmp"

// Dir is a storage backed by a directory tree. It is safe for concurrent use,
// including by several processes sharing one root.
type Dir struct {
	root string // absolute, so that LocalPath does not depend on the cwd
	tmp  string
}

// New returns a Dir rooted at root, creating the directory if needed.
func New(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("dirstore: empty root") // would silently mean the cwd
	}
	abs, err := filepath.Abs(root)
	if err == nil {
		err = os.MkdirAll(filepath.Join(abs, tmpDir), 0o755)
	}
	if err != nil {
		return nil, fmt.Errorf("dirstore: %w", err)
	}
	return &Dir{root: abs, tmp: filepath.Join(abs, tmpDir)}, nil
}

// Put stores r's bytes under key atomically and durably, replacing any
// previous bytes. It leaves no temp file behind on failure, and wraps r's or
// ctx's error when they caused it, so callers can tell them from disk faults.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) (n int64, err error) {
	dst, err := d.path(key)
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(d.tmp, "put-*")
	if err != nil {
		return 0, fmt.Errorf("dirstore: put %q: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name()) // fails harmlessly if already renamed
			n, err = 0, fmt.Errorf("dirstore: put %q: %w", key, err)
		}
	}()
	if n, err = io.Copy(f, ctxReader{ctx, r}); err != nil {
		return
	}
	if err = errors.Join(f.Sync(), f.Close()); err != nil { // Sync first: rename must not outrun the data
		return
	}
	err = d.rename(f.Name(), dst)
	// Sync up to root: the entries of directories MkdirAll just created are
	// as necessary for durability as the file's own. A directory a racing
	// Delete of the same key has pruned needs no syncing.
	for dir := filepath.Dir(dst); err == nil; dir = filepath.Dir(dir) {
		if err = ignoreNotExist(syncDir(dir)); dir == d.root {
			break
		}
	}
	return n, err
}

// rename retries because a concurrent Delete may prune the parent directory
// between MkdirAll and Rename (ErrNotExist), or even within MkdirAll, which
// then reports the ErrExist of a directory that is gone again.
func (d *Dir) rename(tmp, dst string) (err error) {
	for i := 0; i == 0 || i < 10 && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist)); i++ {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			err = os.Rename(tmp, dst)
		}
	}
	return err
}

// Open returns key's bytes as an *os.File, which callers may type-assert to
// Stat it.
func (d *Dir) Open(_ context.Context, key string) (io.ReadSeekCloser, error) {
	p, err := d.file("open", key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err // not a typed nil
	}
	return f, nil
}

// Delete removes key and then the parent directories it leaves empty, so
// that per-file directories do not pile up. A missing key is not an error.
func (d *Dir) Delete(_ context.Context, key string) error {
	p, err := d.file("delete", key)
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil {
		return ignoreNotExist(err) // including directories of other keys
	}
	for dir := filepath.Dir(p); len(dir) > len(d.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty, or a Put got there first
			break
		}
	}
	return nil
}

// Walk calls fn for every stored key and returns fn's first error. It first
// sweeps temp files older than StaleTemp, as spool's periodic cleanup calls
// Walk; sweep errors are ignored lest they block that cleanup.
func (d *Dir) Walk(ctx context.Context, fn func(key string, modTime time.Time) error) error {
	_ = d.SweepTemp(StaleTemp)
	return filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return ignoreNotExist(err) // gone: removed by a concurrent Delete
		case ctx.Err() != nil:
			return ctx.Err()
		case p == d.tmp:
			return filepath.SkipDir
		case !e.Type().IsRegular():
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return ignoreNotExist(err)
		}
		rel, _ := filepath.Rel(d.root, p) // cannot fail: p is below root
		return fn(filepath.ToSlash(rel), info.ModTime())
	})
}

// SweepTemp removes temp files not modified for olderThan, which a crash
// during Put leaves behind. It returns an error if any could not be removed.
func (d *Dir) SweepTemp(olderThan time.Duration) error {
	entries, err := os.ReadDir(d.tmp)
	for _, e := range entries {
		if info, ierr := e.Info(); ierr == nil && time.Since(info.ModTime()) > olderThan {
			if rerr := ignoreNotExist(os.Remove(filepath.Join(d.tmp, e.Name()))); rerr != nil {
				err = rerr
			}
		}
	}
	return err
}

// LocalPath returns the absolute path of key's file, for tools such as ffmpeg
// that need one. The key must exist. Callers must not write to the path:
// that would bypass Put's atomicity.
func (d *Dir) LocalPath(key string) (string, error) { return d.file("localpath", key) }

// file returns the path of key's file if it exists. Directories of keys and
// paths below a file's count as missing, as they would in an object store.
func (d *Dir) file(op, key string) (string, error) {
	p, err := d.path(key)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(p); errors.Is(err, syscall.ENOTDIR) || err == nil && !fi.Mode().IsRegular() {
		return "", &fs.PathError{Op: op, Path: p, Err: fs.ErrNotExist}
	} else if err != nil {
		return "", err
	}
	return p, nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// keyError matches fs.ErrInvalid so that callers need not know this type.
type keyError struct{ key, reason string }

func (e *keyError) Error() string { return fmt.Sprintf("invalid storage key %q: %s", e.key, e.reason) }
func (e *keyError) Unwrap() error { return fs.ErrInvalid }

// path maps key to its file, rejecting anything that could escape root or
// alias another key. ".." is rejected as a path element only: "clip..mp4" is
// a fine name.
func (d *Dir) path(key string) (string, error) {
	var reason string
	switch {
	case key == "" || key == ".":
		reason = `empty or "."`
	case strings.ContainsAny(key, "\\\x00"):
		reason = "contains a backslash or NUL"
	case !fs.ValidPath(key):
		reason = `leading or trailing slash, or an empty, "." or ".." element`
	case key == tmpDir || strings.HasPrefix(key, tmpDir+"/"):
		reason = `".tmp" is reserved for temp files`
	case !filepath.IsLocal(filepath.FromSlash(key)): // e.g. "C:x" or "NUL" on Windows
		reason = "not a local path on this system"
	default:
		return filepath.Join(d.root, filepath.FromSlash(key)), nil
	}
	return "", &keyError{key, reason}
}

// ctxReader makes io.Copy notice cancellation between chunks. Being a plain
// Reader it also hides any WriterTo, which would bypass the check.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be fsynced there
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
