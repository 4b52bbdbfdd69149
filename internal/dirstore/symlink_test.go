package dirstore_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool/internal/dirstore"
)

// outside makes a directory beside a store's root holding secret.txt and
// sub/victim.txt, and returns it with a check that they are unchanged.
func outside(t *testing.T) (dir string, intact func()) {
	t.Helper()
	dir = t.TempDir()
	want := map[string]string{"secret.txt": "secret", "sub/victim.txt": "victim"}
	for name, body := range want {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, func() {
		t.Helper()
		got := files(t, dir)
		if !slices.Equal(got, []string{"secret.txt", "sub/victim.txt"}) {
			t.Errorf("files outside the root: %q, want secret.txt and sub/victim.txt only", got)
		}
		for name, body := range want {
			if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name))); err != nil || string(b) != body {
				t.Errorf("%s outside the root: %q, %v; want %q", name, b, err, body)
			}
		}
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("cannot make symlinks here: %v", err)
	}
}

// TestSymlinksCannotLeadOut checks that links inside the root, to a file or
// a directory outside it, absolute or relative, give no access to what they
// point at: the data directory may hold links that no key should follow.
func TestSymlinksCannotLeadOut(t *testing.T) {
	d, root := newDir(t)
	out, intact := outside(t)
	rel, err := filepath.Rel(filepath.Join(root, "r"), out)
	if err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join(out, "secret.txt"), filepath.Join(root, "abs", "file.txt"))
	symlink(t, out, filepath.Join(root, "abs", "dir"))
	symlink(t, filepath.Join(rel, "secret.txt"), filepath.Join(root, "r", "file.txt"))
	symlink(t, rel, filepath.Join(root, "r", "dir"))
	ctx := t.Context()
	for _, key := range []string{"abs/file.txt", "abs/dir/secret.txt", "abs/dir/sub/victim.txt",
		"r/file.txt", "r/dir/secret.txt", "r/dir/sub/victim.txt"} {
		if rc, err := d.Open(ctx, key); err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Errorf("Open(%q) read %q through a link out of the root", key, b)
		}
		if p, err := d.LocalPath(key); err == nil {
			t.Errorf("LocalPath(%q) = %q, a path through a link out of the root", key, p)
		}
	}
	for _, key := range []string{"abs/dir/secret.txt", "abs/dir/sub/victim.txt", "abs/dir/new.txt", "abs/dir/sub2/new.txt",
		"r/dir/secret.txt", "r/dir/new.txt", "abs/file.txt", "r/file.txt"} {
		// Replacing a link itself is harmless; writing through it is not.
		_, _ = d.Put(ctx, key, strings.NewReader("overwritten"))
		intact()
	}
	for _, key := range []string{"abs/dir/secret.txt", "abs/dir/sub/victim.txt", "r/dir/secret.txt", "abs/file.txt", "r/file.txt"} {
		_ = d.Delete(ctx, key)
		intact()
	}
	err = d.Walk(ctx, func(key string, _ time.Time) error {
		if strings.Contains(key, "secret") || strings.Contains(key, "victim") {
			t.Errorf("Walk listed %q, outside the root", key)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	intact()
}

// TestSymlinkedTempCannotLeadOut checks that a temp area replaced by a link
// out of the root is neither written to by Put nor swept.
func TestSymlinkedTempCannotLeadOut(t *testing.T) {
	d, root := newDir(t)
	out, intact := outside(t)
	old := time.Now().Add(-2 * dirstore.StaleTemp)
	for _, name := range []string{"secret.txt", "sub/victim.txt"} {
		if err := os.Chtimes(filepath.Join(out, filepath.FromSlash(name)), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(root, ".tmp")); err != nil {
		t.Fatal(err)
	}
	symlink(t, out, filepath.Join(root, ".tmp"))
	ctx := t.Context()
	_, _ = d.Put(ctx, "k.txt", strings.NewReader("new"))
	intact()
	_ = d.SweepTemp(0)
	intact()
	_ = d.Walk(ctx, func(string, time.Time) error { return nil })
	intact()
	if err := d.SweepTemp(0); err == nil {
		t.Error("SweepTemp of a temp area that leads out of the root succeeded")
	}
}

// TestNewRefusesTempOutside checks that New does not accept a temp area
// that leads out of the root.
func TestNewRefusesTempOutside(t *testing.T) {
	root := t.TempDir()
	out, intact := outside(t)
	symlink(t, out, filepath.Join(root, ".tmp"))
	if _, err := dirstore.New(root); err == nil {
		t.Error("New accepted a temp area that is a link out of the root")
	}
	intact()
}
