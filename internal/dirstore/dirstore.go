// Package dirstore stores spool's file bytes in a local directory.
//
// Key "a/b.mp4" is the file root/a/b.mp4. Put writes into root/.tmp and then
// renames into place, so readers and crashes only ever see whole files; the
// top-level key segment ".tmp" is therefore reserved. Every access goes
// through an os.Root, so that links in the directory cannot lead out of it.
package dirstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
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
//
// Every access goes through an os.Root, so that a symbolic link inside the
// directory cannot lead out of it: a key whose path resolves outside the
// root is an error, whatever the operation, and a key that is itself a
// symbolic link counts as missing.
type Dir struct {
	root *os.Root
	abs  string // root's absolute path, so that LocalPath does not depend on the cwd
}

// New returns a Dir rooted at root, creating the directory if needed.
func New(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("dirstore: empty root") // would silently mean the cwd
	}
	var r *os.Root
	abs, err := filepath.Abs(root)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err == nil {
		r, err = os.OpenRoot(abs)
	}
	if err == nil {
		if err = r.MkdirAll(tmpDir, 0o755); err != nil {
			r.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dirstore: %w", err)
	}
	// The Root stays open for the Dir's life; it is closed when both are
	// garbage, as Storage has no Close.
	return &Dir{root: r, abs: abs}, nil
}

// Put stores r's bytes under key atomically and durably, replacing any
// previous bytes. It leaves no temp file behind on failure, and wraps r's or
// ctx's error when they caused it, so callers can tell them from disk faults.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) (n int64, err error) {
	dst, err := d.name(key)
	if err != nil {
		return 0, err
	}
	f, tmp, err := d.createTemp()
	if err != nil {
		return 0, fmt.Errorf("dirstore: put %q: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			d.root.Remove(tmp) // fails harmlessly if already renamed
			n, err = 0, fmt.Errorf("dirstore: put %q: %w", key, err)
		}
	}()
	if n, err = io.Copy(f, ctxReader{ctx, r}); err != nil {
		return
	}
	if err = errors.Join(f.Sync(), f.Close()); err != nil { // Sync first: rename must not outrun the data
		return
	}
	err = d.rename(tmp, dst)
	// Sync up to root: the entries of directories MkdirAll just created are
	// as necessary for durability as the file's own. A directory a racing
	// Delete of the same key has pruned needs no syncing.
	for dir := filepath.Dir(dst); err == nil; dir = filepath.Dir(dir) {
		if err = ignoreNotExist(d.syncDir(dir)); dir == "." {
			break
		}
	}
	return n, err
}

// createTemp creates a new file in the temp area, as os.CreateTemp does,
// but through the root, and returns it with its name.
func (d *Dir) createTemp() (f *os.File, name string, err error) {
	for range 100 {
		name = filepath.Join(tmpDir, "put-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err = d.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return f, name, err
}

// rename retries because a concurrent Delete may prune the parent directory
// between MkdirAll and Rename (ErrNotExist), or even within MkdirAll, which
// then reports the ErrExist of a directory that is gone again.
func (d *Dir) rename(tmp, dst string) (err error) {
	for i := 0; i == 0 || i < 10 && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist)); i++ {
		if err = d.root.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			err = d.root.Rename(tmp, dst)
		}
	}
	return err
}

// Open returns key's bytes as an *os.File, which callers may type-assert to
// Stat it.
func (d *Dir) Open(_ context.Context, key string) (io.ReadSeekCloser, error) {
	name, err := d.file("open", key)
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(name)
	if err != nil {
		return nil, err // not a typed nil
	}
	// The key may have been replaced since file looked: by a link, which
	// the root kept inside, or by a directory.
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = d.notExist("open", name)
		}
		return nil, err
	}
	return f, nil
}

// Delete removes key and then the parent directories it leaves empty, so
// that per-file directories do not pile up. A missing key is not an error.
func (d *Dir) Delete(_ context.Context, key string) error {
	name, err := d.file("delete", key)
	if err == nil {
		err = d.root.Remove(name)
	}
	if err != nil {
		return ignoreNotExist(err) // including directories of other keys
	}
	for dir := filepath.Dir(name); dir != "."; dir = filepath.Dir(dir) {
		// Remove would also remove a link to a directory.
		if fi, err := d.root.Lstat(dir); err != nil || !fi.IsDir() || d.root.Remove(dir) != nil {
			break // not empty, or a Put got there first
		}
	}
	return nil
}

// Walk calls fn for every stored key and returns fn's first error. It first
// sweeps temp files older than StaleTemp, as spool's periodic cleanup calls
// Walk; sweep errors are ignored lest they block that cleanup. Links are
// not followed, so only files below the root are listed.
func (d *Dir) Walk(ctx context.Context, fn func(key string, modTime time.Time) error) error {
	_ = d.SweepTemp(StaleTemp)
	return fs.WalkDir(d.root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return ignoreNotExist(err) // gone: removed by a concurrent Delete
		case ctx.Err() != nil:
			return ctx.Err()
		case p == tmpDir:
			return fs.SkipDir
		case !e.Type().IsRegular():
			return nil
		}
		info, err := d.root.Lstat(filepath.FromSlash(p))
		if err != nil || !info.Mode().IsRegular() {
			return ignoreNotExist(err)
		}
		return fn(p, info.ModTime())
	})
}

// SweepTemp removes temp files not modified for olderThan, which a crash
// during Put leaves behind, and the work directories of TempDir in which
// nothing was modified for as long. It returns an error if any could not be
// removed.
func (d *Dir) SweepTemp(olderThan time.Duration) error {
	entries, err := fs.ReadDir(d.root.FS(), tmpDir)
	for _, e := range entries {
		name := filepath.Join(tmpDir, e.Name())
		if !d.stale(name, olderThan) {
			continue
		}
		if rerr := ignoreNotExist(d.root.RemoveAll(name)); rerr != nil {
			err = rerr
		}
	}
	return err
}

// stale reports whether name, and everything in it if it is a directory,
// was last modified more than olderThan ago: a program writing into a work
// directory updates its files, not the directory.
func (d *Dir) stale(name string, olderThan time.Duration) bool {
	info, err := d.root.Lstat(name)
	if err != nil || time.Since(info.ModTime()) <= olderThan {
		return false
	}
	if !info.IsDir() {
		return true
	}
	fresh := false
	_ = fs.WalkDir(d.root.FS(), name, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if i, err := e.Info(); err == nil && time.Since(i.ModTime()) <= olderThan {
			fresh = true
			return fs.SkipAll
		}
		return nil
	})
	return !fresh
}

// TempDir creates a new directory in the temp area, for work files of a
// program such as ffmpeg, and returns its absolute path. The caller removes
// it; SweepTemp removes it once nothing in it changed for its age.
func (d *Dir) TempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp(filepath.Join(d.abs, tmpDir), prefix)
	if err != nil {
		return "", fmt.Errorf("dirstore: %w", err)
	}
	return dir, nil
}

// LocalPath returns the absolute path of key's file, for tools such as ffmpeg
// that need one. The key must exist. Callers must not write to the path:
// that would bypass Put's atomicity. The path is checked when LocalPath
// returns; the tool that opens it is not confined to the root.
func (d *Dir) LocalPath(key string) (string, error) {
	name, err := d.file("localpath", key)
	if err != nil {
		return "", err
	}
	return filepath.Join(d.abs, name), nil
}

// file returns the name of key's file in the root if it exists. Directories
// of keys, paths below a file and links count as missing, as they would in
// an object store.
func (d *Dir) file(op, key string) (string, error) {
	name, err := d.name(key)
	if err != nil {
		return "", err
	}
	if fi, err := d.root.Lstat(name); errors.Is(err, syscall.ENOTDIR) || err == nil && !fi.Mode().IsRegular() {
		return "", d.notExist(op, name)
	} else if err != nil {
		return "", err
	}
	return name, nil
}

// notExist returns the error of a missing key.
func (d *Dir) notExist(op, name string) error {
	return &fs.PathError{Op: op, Path: filepath.Join(d.abs, name), Err: fs.ErrNotExist}
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

// name maps key to its file's name in the root, rejecting anything that
// could escape root or alias another key. ".." is rejected as a path element
// only: "clip..mp4" is a fine name.
func (d *Dir) name(key string) (string, error) {
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
		return filepath.FromSlash(key), nil
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

func (d *Dir) syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be fsynced there
	}
	f, err := d.root.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
