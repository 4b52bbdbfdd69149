package spooltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// TestStorage runs the conformance suite against storages made by
// newStorage, as subtests of t: put and open, atomic replace, a failed or
// cancelled put that leaves the old bytes, delete, walk, invalid keys,
// concurrent writers. Each subtest gets a fresh, empty storage from
// newStorage, which should register its own cleanup. Every Storage
// implementation must pass it.
//
// Beyond the interface's documented behaviour, Run requires what spool relies
// on: a failed Put's error wraps the reader's or the context's error, so that
// a broken source or a cancellation is told from a storage fault; Open and
// Delete reject the keys Put rejects, as a filesystem backend could otherwise
// reach outside its root; keys have object-store semantics (a key's prefix,
// or a path below a key, is simply missing); and Walk returns fn's error and
// honours a cancelled context.
func TestStorage(t *testing.T, newStorage func(t *testing.T) spool.Storage) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s spool.Storage)
	}{
		{"PutOpen", testPutOpen},
		{"PutEmpty", testPutEmpty},
		{"OpenMissing", testOpenMissing},
		{"DeleteThenOpen", testDeleteThenOpen},
		{"DeleteMissing", testDeleteMissing},
		{"PrefixIsNotKey", testPrefixIsNotKey},
		{"Replace", testReplace},
		{"FailedPutKeepsOld", testFailedPutKeepsOld},
		{"CancelledPut", testCancelledPut},
		{"Walk", testWalk},
		{"WalkStops", testWalkStops},
		{"Concurrent", testConcurrent},
		{"LargeSeek", testLargeSeek},
		{"InvalidKeys", testInvalidKeys},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStorage(t)) })
	}
}

func testPutOpen(t *testing.T, s spool.Storage) {
	want := []byte("hello, spool\n")
	putBytes(t, s, "file_01/greeting.txt", want)
	if got := getBytes(t, s, "file_01/greeting.txt"); !bytes.Equal(got, want) {
		t.Fatalf("Open returned %q, want %q", got, want)
	}
}

func testPutEmpty(t *testing.T, s spool.Storage) {
	putBytes(t, s, "empty.json", nil)
	if got := getBytes(t, s, "empty.json"); len(got) != 0 {
		t.Fatalf("Open returned %q, want no bytes", got)
	}
	wantKeys(t, s, "empty.json")
}

func testOpenMissing(t *testing.T, s spool.Storage) {
	putBytes(t, s, "present.txt", []byte("x"))
	for _, key := range []string{"missing.txt", "no/such/dir/key.txt"} {
		openMissing(t, s, key)
	}
}

func testDeleteThenOpen(t *testing.T, s spool.Storage) {
	putBytes(t, s, "a/doomed.txt", []byte("bye"))
	putBytes(t, s, "a/kept.txt", []byte("stay"))
	if err := s.Delete(t.Context(), "a/doomed.txt"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	openMissing(t, s, "a/doomed.txt")
	wantKeys(t, s, "a/kept.txt")
}

func testDeleteMissing(t *testing.T, s spool.Storage) {
	for _, key := range []string{"never.txt", "never/nested/key.txt"} {
		if err := s.Delete(t.Context(), key); err != nil {
			t.Errorf("Delete(%q) of a missing key = %v, want nil", key, err)
		}
	}
	putBytes(t, s, "twice.txt", []byte("x"))
	for range 2 {
		if err := s.Delete(t.Context(), "twice.txt"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
}

// testPrefixIsNotKey pins object-store semantics, which a filesystem gets
// wrong by default: directories and paths below files are not keys.
func testPrefixIsNotKey(t *testing.T, s spool.Storage) {
	putBytes(t, s, "dir/child.txt", []byte("child"))
	putBytes(t, s, "file.txt", []byte("file"))
	openMissing(t, s, "dir")
	openMissing(t, s, "file.txt/below")
	for _, key := range []string{"dir", "file.txt/below"} {
		if err := s.Delete(t.Context(), key); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", key, err)
		}
	}
	wantKeys(t, s, "dir/child.txt", "file.txt")
}

func testReplace(t *testing.T, s spool.Storage) {
	putBytes(t, s, "k.txt", bytes.Repeat([]byte("A"), 1000))
	putBytes(t, s, "k.txt", []byte("BB")) // shorter, so leftover bytes of A would show
	if got := getBytes(t, s, "k.txt"); string(got) != "BB" {
		t.Fatalf("after replace, Open returned %q, want %q", got, "BB")
	}
	wantKeys(t, s, "k.txt")
}

func testFailedPutKeepsOld(t *testing.T, s spool.Storage) {
	old := []byte("old bytes")
	putBytes(t, s, "k.txt", old)
	for _, key := range []string{"k.txt", "fresh/k.txt"} {
		r := &failingReader{r: bytes.NewReader(randomBytes(1 << 20)), left: 100 << 10}
		if _, err := s.Put(t.Context(), key, r); !errors.Is(err, errSource) {
			t.Fatalf("Put(%q) with a failing reader = %v, want an error wrapping %v", key, err, errSource)
		}
	}
	if got := getBytes(t, s, "k.txt"); !bytes.Equal(got, old) {
		t.Fatalf("after failed replace, Open returned %d bytes %.20q, want the old %q", len(got), got, old)
	}
	openMissing(t, s, "fresh/k.txt")
	wantKeys(t, s, "k.txt")
}

func testCancelledPut(t *testing.T, s spool.Storage) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(ctx, "before.txt", bytes.NewReader([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context = %v, want context.Canceled", err)
	}
	// Cancel once the storage has started reading: it must notice rather
	// than publish.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	r := &cancellingReader{r: bytes.NewReader(randomBytes(4 << 20)), cancel: cancel}
	if _, err := s.Put(ctx, "during.txt", r); !errors.Is(err, context.Canceled) {
		t.Errorf("Put cancelled mid-copy = %v, want context.Canceled", err)
	}
	openMissing(t, s, "before.txt")
	openMissing(t, s, "during.txt")
	wantKeys(t, s)
}

func testWalk(t *testing.T, s spool.Storage) {
	wantKeys(t, s)
	start := time.Now().Add(-time.Hour) // generous: clocks of remote stores drift
	keys := []string{"top.txt", "a/e.txt", "a/b/c.txt", "a/b/d.txt", "file_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A/clip.mp4"}
	for _, k := range keys {
		putBytes(t, s, k, []byte(k))
	}
	wantKeys(t, s, keys...)
	err := s.Walk(t.Context(), func(key string, mod time.Time) error {
		if mod.Before(start) || mod.After(time.Now().Add(time.Hour)) {
			t.Errorf("Walk reported %q modified at %v, want about now", key, mod)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if err := s.Delete(t.Context(), "a/b/c.txt"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantKeys(t, s, "top.txt", "a/e.txt", "a/b/d.txt", "file_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A/clip.mp4")
}

func testWalkStops(t *testing.T, s spool.Storage) {
	putBytes(t, s, "a.txt", nil)
	putBytes(t, s, "b/c.txt", nil)
	stop, calls := errors.New("stop"), 0
	err := s.Walk(t.Context(), func(string, time.Time) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Walk returned %v after %d calls, want fn's error after 1 call", err, calls)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls = 0
	err = s.Walk(ctx, func(string, time.Time) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Fatalf("Walk with a cancelled context returned %v after %d calls, want context.Canceled after none", err, calls)
	}
}

// testConcurrent is meant for -race: writers race on one shared key and
// readers must only ever see one writer's whole payload.
func testConcurrent(t *testing.T, s spool.Storage) {
	const writers = 8
	payloads := make([][]byte, writers)
	for i := range payloads {
		payloads[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i*997)
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	for i, p := range payloads {
		wg.Go(func() {
			for round := range 3 {
				if _, err := s.Put(ctx, fmt.Sprintf("own/%d.bin", i), bytes.NewReader(p)); err != nil {
					t.Errorf("Put own/%d.bin round %d: %v", i, round, err)
				}
				if _, err := s.Put(ctx, "shared.bin", bytes.NewReader(p)); err != nil {
					t.Errorf("Put shared.bin round %d: %v", round, err)
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				got, err := readBytes(ctx, s, "shared.bin")
				if errors.Is(err, fs.ErrNotExist) {
					continue // no writer has finished yet
				} else if err != nil {
					t.Errorf("Open shared.bin: %v", err)
				} else if !slices.ContainsFunc(payloads, func(p []byte) bool { return bytes.Equal(p, got) }) {
					t.Errorf("reader saw a %d-byte shared.bin that no writer wrote whole", len(got))
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := []string{"shared.bin"}
	for i, p := range payloads {
		key := fmt.Sprintf("own/%d.bin", i)
		if got := getBytes(t, s, key); !bytes.Equal(got, p) {
			t.Errorf("%s holds %d bytes, want its %d-byte payload", key, len(got), len(p))
		}
		want = append(want, key)
	}
	got := getBytes(t, s, "shared.bin")
	if !slices.ContainsFunc(payloads, func(p []byte) bool { return bytes.Equal(p, got) }) {
		t.Errorf("shared.bin holds %d bytes that no writer wrote whole", len(got))
	}
	wantKeys(t, s, want...)
}

func testLargeSeek(t *testing.T, s spool.Storage) {
	want := randomBytes(8 << 20)
	putBytes(t, s, "big/video.mp4", want)
	if got := getBytes(t, s, "big/video.mp4"); !bytes.Equal(got, want) {
		t.Fatalf("8 MiB round trip differs (got %d bytes)", len(got))
	}
	// ffmpeg and HTTP range requests seek, so Open must really support it.
	rc, err := s.Open(t.Context(), "big/video.mp4")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	const off = 5<<20 + 3
	if pos, err := rc.Seek(off, io.SeekStart); err != nil || pos != off {
		t.Fatalf("Seek(%d) = %d, %v", off, pos, err)
	}
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, want[off:off+len(buf)]) {
		t.Fatalf("read after Seek: err %v, bytes equal %v", err, bytes.Equal(buf, want[off:off+len(buf)]))
	}
	if pos, err := rc.Seek(-10, io.SeekEnd); err != nil || pos != int64(len(want)-10) {
		t.Fatalf("Seek(-10, end) = %d, %v", pos, err)
	}
}

func testInvalidKeys(t *testing.T, s spool.Storage) {
	ctx := t.Context()
	for _, key := range []string{"", "../x", "/abs", "a/../b", "a\\b", "..", ".", "a//b", "a/", "./a", "a/./b", "a\x00b"} {
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("x"))); err == nil {
			t.Errorf("Put(%q) succeeded, want an invalid key error", key)
		}
		if rc, err := s.Open(ctx, key); err == nil {
			rc.Close()
			t.Errorf("Open(%q) succeeded, want an error", key)
		}
		if s.Delete(ctx, key) == nil {
			t.Errorf("Delete(%q) succeeded, want an invalid key error", key)
		}
	}
	wantKeys(t, s)
}

func putBytes(t *testing.T, s spool.Storage, key string, data []byte) {
	t.Helper()
	n, err := s.Put(t.Context(), key, bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Put(%q, %d bytes) = %d, %v", key, len(data), n, err)
	}
}

func getBytes(t *testing.T, s spool.Storage, key string) []byte {
	t.Helper()
	data, err := readBytes(t.Context(), s, key)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return data
}

func readBytes(ctx context.Context, s spool.Storage, key string) ([]byte, error) {
	rc, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func openMissing(t *testing.T, s spool.Storage, key string) {
	t.Helper()
	rc, err := s.Open(t.Context(), key)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(%q) = %v, want an error matching fs.ErrNotExist", key, err)
	}
}

func wantKeys(t *testing.T, s spool.Storage, want ...string) {
	t.Helper()
	var got []string
	if err := s.Walk(t.Context(), func(key string, _ time.Time) error {
		got = append(got, key)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("Walk listed %q, want %q", got, want)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{'s', 'p', 'o', 'o', 'l'}).Read(b) // fixed seed: failures reproduce
	return b
}

var errSource = errors.New("spooltest: source failed")

// failingReader yields left bytes of r, then errSource.
type failingReader struct {
	r    io.Reader
	left int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, errSource
	}
	n, err := f.r.Read(p[:min(len(p), f.left)])
	f.left -= n
	return n, err
}

// cancellingReader cancels its context on the first Read but keeps serving
// data, so only the storage's own context check can stop the Put.
type cancellingReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	c.cancel()
	return c.r.Read(p)
}
