package dirstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/internal/dirstore"
	"github.com/spoolrun/spool/spooltest"
)

// localPather mirrors spool.LocalPather, which lives in the root package.
type localPather interface {
	LocalPath(key string) (string, error)
}

var (
	_ spool.Storage = (*dirstore.Dir)(nil)
	_ localPather   = (*dirstore.Dir)(nil)
)

func newDir(t *testing.T) (*dirstore.Dir, string) {
	t.Helper()
	root := t.TempDir()
	d, err := dirstore.New(root)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d, root
}

func TestConformance(t *testing.T) {
	spooltest.TestStorage(t, func(t *testing.T) spool.Storage {
		d, _ := newDir(t)
		return d
	})
}

// files lists every non-directory below root, temp area included, so that
// leftovers Walk would hide still show up.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type brokenReader struct{ n int }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errors.New("broken")
	}
	n := min(len(p), b.n)
	b.n -= n
	return n, nil
}

func TestFailedPutLeavesNoTemp(t *testing.T) {
	d, root := newDir(t)
	ctx := t.Context()
	if _, err := d.Put(ctx, "keep/a.txt", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, "keep/a.txt", &brokenReader{n: 1 << 20}); err == nil {
		t.Fatal("Put with a broken reader succeeded")
	}
	if _, err := d.Put(ctx, "new/b.txt", &brokenReader{n: 10}); err == nil {
		t.Fatal("Put with a broken reader succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Put(cancelled, "new/c.txt", strings.NewReader("c")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with cancelled ctx = %v", err)
	}
	if got := files(t, root); !slices.Equal(got, []string{"keep/a.txt"}) {
		t.Fatalf("files on disk: %q, want only keep/a.txt", got)
	}
}

func TestLocalPath(t *testing.T) {
	d, root := newDir(t)
	want := []byte("frame data")
	if _, err := d.Put(t.Context(), "file_01/in.mp4", bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	p, err := d.LocalPath("file_01/in.mp4")
	if err != nil {
		t.Fatalf("LocalPath: %v", err)
	}
	if !filepath.IsAbs(p) || !strings.HasPrefix(p, root) {
		t.Errorf("LocalPath = %q, want an absolute path below %q", p, root)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
		t.Errorf("reading LocalPath: %q, %v; want %q", got, err, want)
	}
	if _, err := d.LocalPath("file_01/missing.mp4"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LocalPath of a missing key = %v, want fs.ErrNotExist", err)
	}
	if _, err := d.LocalPath("../escape"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("LocalPath of an invalid key = %v, want fs.ErrInvalid", err)
	}
}

func TestOpenReturnsFile(t *testing.T) {
	d, _ := newDir(t)
	if _, err := d.Put(t.Context(), "x.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	rc, err := d.Open(t.Context(), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if f, ok := rc.(*os.File); !ok {
		t.Fatalf("Open returned %T, want *os.File", rc)
	} else if fi, err := f.Stat(); err != nil || fi.Size() != 2 {
		t.Fatalf("Stat: %v, %v", fi, err)
	}
}

func TestStaleTempSwept(t *testing.T) {
	d, root := newDir(t)
	stale := filepath.Join(root, ".tmp", "put-stale")
	fresh := filepath.Join(root, ".tmp", "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * dirstore.StaleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := d.Walk(t.Context(), func(k string, _ time.Time) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("Walk listed temp files: %q", keys)
	}
	if got := files(t, root); !slices.Equal(got, []string{".tmp/put-fresh"}) {
		t.Errorf("after Walk, files on disk: %q, want only the fresh temp file", got)
	}
	if err := d.SweepTemp(0); err != nil {
		t.Fatal(err)
	}
	if got := files(t, root); len(got) != 0 {
		t.Errorf("after SweepTemp(0), files on disk: %q", got)
	}
}

func TestDeleteRemovesEmptyDirs(t *testing.T) {
	d, root := newDir(t)
	ctx := t.Context()
	for _, k := range []string{"a/b/c.txt", "a/d.txt"} {
		if _, err := d.Put(ctx, k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(root, rel))
		return err == nil
	}
	if err := d.Delete(ctx, "a/b/c.txt"); err != nil {
		t.Fatal(err)
	}
	if exists("a/b") || !exists("a") {
		t.Fatalf("after deleting a/b/c.txt: a/b exists %v, a exists %v; want false, true", exists("a/b"), exists("a"))
	}
	if err := d.Delete(ctx, "a/d.txt"); err != nil {
		t.Fatal(err)
	}
	if exists("a") || !exists(".") || !exists(".tmp") {
		t.Fatalf("after deleting a/d.txt: a exists %v, root %v, .tmp %v; want false, true, true", exists("a"), exists("."), exists(".tmp"))
	}
	// The store must still work after its directories were pruned.
	if _, err := d.Put(ctx, "a/b/c.txt", strings.NewReader("again")); err != nil {
		t.Fatal(err)
	}
}

// TestPutDeleteRace targets the window in which one key's Delete prunes the
// directory that a Put of a sibling key has just created and is renaming into,
// or that a Walk is listing.
func TestPutDeleteRace(t *testing.T) {
	d, _ := newDir(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			key := fmt.Sprintf("shared/dir/%d", g)
			for i := range 100 {
				if _, err := d.Put(ctx, key, strings.NewReader("x")); err != nil {
					t.Errorf("round %d: Put racing Delete: %v", i, err)
					return
				}
				if err := d.Delete(ctx, key); err != nil {
					t.Errorf("Delete: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() { // Walk must shrug off directories vanishing under it
		for range 50 {
			if err := d.Walk(ctx, func(string, time.Time) error { return nil }); err != nil {
				t.Errorf("Walk racing Delete: %v", err)
			}
		}
	})
	wg.Wait()
}

// TestCancelStopsCopy checks that Put stops reading soon after cancellation
// instead of draining the source, which may be a slow or endless download.
func TestCancelStopsCopy(t *testing.T) {
	d, _ := newDir(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := &countingReader{cancel: cancel}
	if _, err := d.Put(ctx, "k", src); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if src.n > 1<<20 {
		t.Fatalf("Put read %d bytes after cancellation", src.n)
	}
}

// countingReader is a 64 MiB source that cancels on its first Read.
type countingReader struct {
	cancel context.CancelFunc
	n      int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.cancel()
	if c.n >= 64<<20 {
		return 0, io.EOF
	}
	c.n += len(p)
	return len(p), nil
}

func TestInvalidKeyError(t *testing.T) {
	d, _ := newDir(t)
	_, err := d.Put(t.Context(), ".tmp/x", strings.NewReader("x"))
	if !errors.Is(err, fs.ErrInvalid) || !strings.HasPrefix(err.Error(), `invalid storage key ".tmp/x": `) {
		t.Fatalf("Put into the temp area = %v, want an invalid storage key error", err)
	}
	if _, err := d.Put(t.Context(), "clip..mp4", io.LimitReader(strings.NewReader("ok"), 2)); err != nil {
		t.Fatalf("a name merely containing \"..\" was rejected: %v", err)
	}
}

func TestNew(t *testing.T) {
	root := filepath.Join(t.TempDir(), "not", "yet")
	if _, err := dirstore.New(root); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("New did not create %s: %v", root, err)
	}
	if _, err := dirstore.New(""); err == nil {
		t.Fatal(`New("") succeeded`)
	}
}

// TestTempDirSwept: a work directory from TempDir is swept once nothing in
// it changed for the age, not while a program still writes in it.
func TestTempDirSwept(t *testing.T) {
	d, root := newDir(t)
	stale, err := d.TempDir("job-")
	if err != nil {
		t.Fatal(err)
	}
	busy, err := d.TempDir("job-")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(stale) != filepath.Join(root, ".tmp") {
		t.Fatalf("TempDir made %s, want it in %s/.tmp", stale, root)
	}
	old := time.Now().Add(-2 * dirstore.StaleTemp)
	for _, p := range []string{filepath.Join(stale, "out.mp4"), filepath.Join(busy, "out.mp4")} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// busy's directory is old, but its file is being written.
	for _, p := range []string{filepath.Join(stale, "out.mp4"), stale, busy} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SweepTemp(dirstore.StaleTemp); err != nil {
		t.Fatal(err)
	}
	if got := files(t, root); !slices.Equal(got, []string{".tmp/" + filepath.Base(busy) + "/out.mp4"}) {
		t.Errorf("after the sweep, files on disk: %q, want only the busy work file", got)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale work dir: %v, want it removed", err)
	}
}
