package spool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/spooltest"
)

// pngBytes makes a w×h PNG.
func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestFileIDInput(t *testing.T) {
	ctx := ctxT(t)
	e := openFile(t, spool.Config{})
	f, err := e.CreateFile(ctx, bytes.NewReader(pngBytes(t, 64, 48)), &spool.FileParams{Filename: "in.png", Ref: "original"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != "image" || f.Type != "image/png" || f.Width != 64 || f.Height != 48 || f.Filesize == 0 {
		t.Errorf("probed file = %+v", f)
	}
	task, err := e.Create(ctx, spool.Request{Kind: "image", FileID: f.ID, Options: map[string]any{"width": 32}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := e.Get(ctx, task.ID)
	b, _ := json.Marshal(got)
	var m struct {
		Input map[string]any `json:"input"`
	}
	json.Unmarshal(b, &m)
	if m.Input["id"] != f.ID || m.Input["object"] != "source" || m.Input["width"] != float64(64) ||
		m.Input["type"] != "image/png" || m.Input["ref"] != "original" {
		t.Errorf("input = %v, want the file's record", m.Input)
	}
	_, err = e.Create(ctx, spool.Request{Kind: "image", FileID: "file_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A"})
	var ve *spool.ValidationError
	if !errors.As(err, &ve) || ve.Field != "file_id" {
		t.Errorf("unknown file_id = %v, want a ValidationError on file_id", err)
	}
	// The bytes read back, and the file can be listed and deleted.
	rec, r, err := e.OpenFile(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(data, pngBytes(t, 64, 48)) || rec.ID != f.ID {
		t.Error("OpenFile returned other bytes")
	}
	if list, err := e.ListFiles(ctx, &spool.FileListParams{Ref: "original"}); err != nil || len(list) != 1 {
		t.Errorf("ListFiles by ref = %d, %v", len(list), err)
	}
	// Not while the task on it may still run.
	if err := e.DeleteFile(ctx, f.ID); !errors.Is(err, spool.ErrFileInUse) {
		t.Fatalf("DeleteFile of a pending task's input = %v, want ErrFileInUse", err)
	}
	if _, err := e.Cancel(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteFile(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.OpenFile(ctx, f.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("OpenFile after delete = %v", err)
	}
}

func TestURLInputFetchedAndProbed(t *testing.T) {
	ctx := ctxT(t)
	img := pngBytes(t, 20, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing.png" {
			http.NotFound(w, r)
			return
		}
		w.Write(img)
	}))
	t.Cleanup(srv.Close)
	var sawPath bool
	e := spooltest.New(t, &spool.Config{AllowPrivateNetworks: true}, map[string]spool.Handler{
		"size": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
			if in := job.Input(); in.ID != "" || in.URL == "" {
				return errors.New("before fetching, the input should be the bare url")
			}
			p, err := job.InputPath(ctx)
			if err != nil {
				return err
			}
			b, _ := readFile(p)
			sawPath = bytes.Equal(b, img)
			in := job.Input()
			return job.SetOutput(map[string]int{"w": in.Width, "h": in.Height})
		}),
	})
	task, err := e.Create(ctx, spool.Request{Kind: "size", URL: srv.URL + "/pic.png"})
	if err != nil {
		t.Fatal(err)
	}
	if task.Input == nil || task.Input.Object != "source" || task.Input.URL == "" || task.Input.ID != "" {
		t.Errorf("created input = %+v, want {object: source, url}", task.Input)
	}
	done, err := e.Wait(ctx, task.ID)
	if err != nil || done.Status != spool.StatusCompleted {
		t.Fatalf("task: %+v, %v", done, err)
	}
	if !sawPath || string(done.Output) != `{"h":10,"w":20}` {
		t.Errorf("handler saw bytes %v, output %s", sawPath, done.Output)
	}
	in := done.Input
	if in == nil || in.ID == "" || in.Width != 20 || in.Type != "image/png" || in.URL != srv.URL+"/pic.png" || in.Filename != "pic.png" {
		t.Errorf("input after fetching = %+v, want the probed file", in)
	}
	if rec, err := e.GetFile(ctx, in.ID); err != nil || rec.Width != 20 {
		t.Errorf("the fetched input has no record: %v", err)
	}
	// A 404 fails the task at once, with the reason.
	bad := spooltest.CreateAndWait(t, e, spool.Request{Kind: "size", URL: srv.URL + "/missing.png"})
	if bad.Status != spool.StatusFailed || bad.Attempt != 1 || !strings.Contains(bad.Error, "404") {
		t.Errorf("404 input: %s after %d attempts: %q", bad.Status, bad.Attempt, bad.Error)
	}
	// In words for users: the URL without its query, and the answer; not
	// the storage's layers.
	if want := "download input " + srv.URL + "/missing.png: the server answered 404 Not Found"; bad.Error != want {
		t.Errorf("404 input's error = %q, want %q", bad.Error, want)
	}
	gone := spooltest.CreateAndWait(t, e, spool.Request{Kind: "size", URL: "http://127.0.0.1:1/x.png?token=secret"})
	if !strings.HasPrefix(gone.Error, "download input http://127.0.0.1:1/x.png: ") || strings.Contains(gone.Error, "secret") ||
		strings.Contains(gone.Error, "store file") || strings.Contains(gone.Error, `Get "`) {
		t.Errorf("unreachable input's error = %q", gone.Error)
	}
}

func TestURLInputRefusedAddress(t *testing.T) {
	// B listens on 127.0.0.2, which the engine does not allow; A, on the
	// allowed 127.0.0.1, redirects there. The dialer must refuse the hop.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.2: %v", err)
	}
	reached := make(chan struct{}, 1)
	b := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached <- struct{}{} }))
	b.Listener.Close()
	b.Listener = ln
	b.Start()
	t.Cleanup(b.Close)
	a := httptest.NewServer(http.RedirectHandler(b.URL+"/x.png", http.StatusFound))
	t.Cleanup(a.Close)
	e := spooltest.New(t, &spool.Config{AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		map[string]spool.Handler{
			"get": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
				_, err := job.InputPath(ctx)
				return err
			}),
		})
	task := spooltest.CreateAndWait(t, e, spool.Request{Kind: "get", URL: a.URL + "/x.png"})
	if task.Status != spool.StatusFailed || task.Attempt != 1 || !strings.Contains(task.Error, "refusing to connect to 127.0.0.2") {
		t.Errorf("task = %s after %d attempts %q, want failed with the refusal", task.Status, task.Attempt, task.Error)
	}
	select {
	case <-reached:
		t.Error("the refused server was reached")
	default:
	}
	// The literal address is refused at Create already.
	if _, err := e.Create(context.Background(), spool.Request{Kind: "get", URL: b.URL + "/x.png"}); !errors.Is(err, spool.ErrInvalidRequest) {
		t.Errorf("Create with a refused literal address = %v", err)
	}
}

func TestOutputFilesRecordedWithCompletion(t *testing.T) {
	ctx := ctxT(t)
	e := spooltest.New(t, nil, map[string]spool.Handler{
		"two": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
			a, err := job.CreateFile(ctx, bytes.NewReader(pngBytes(t, 8, 8)), &spool.File{Filename: "a.png"})
			if err != nil {
				return err
			}
			b, err := job.CreateFile(ctx, strings.NewReader(`{"x":1}`), &spool.File{Filename: "b.json", Object: "intelligence"})
			if err != nil {
				return err
			}
			if job.Attempt == 1 {
				return errors.New("fail the first attempt after writing files")
			}
			return job.SetOutput(map[string]any{"files": []string{a.ID, b.ID}, "note": "two files"})
		}),
	})
	task := spooltest.CreateAndWait(t, e, spool.Request{Kind: "two", Ref: "out"})
	if task.Status != spool.StatusCompleted || task.Attempt != 2 {
		t.Fatalf("task %s attempt %d: %s", task.Status, task.Attempt, task.Error)
	}
	var out struct {
		Files []string `json:"files"`
	}
	if err := json.Unmarshal(task.Output, &out); err != nil || len(out.Files) != 2 {
		t.Fatalf("output %s", task.Output)
	}
	files, err := e.ListFiles(ctx, &spool.FileListParams{TaskID: task.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("%d file records for the task, want 2 (the failed attempt's must not be recorded)", len(files))
	}
	byID := map[string]*spool.File{}
	for _, f := range files {
		byID[f.ID] = f
	}
	a, b := byID[out.Files[0]], byID[out.Files[1]]
	if a == nil || b == nil {
		t.Fatalf("output names %v, records are %v", out.Files, byID)
	}
	if a.Kind != "image" || a.Width != 8 || a.Ref != "out" || b.Kind != "json" || b.Object != "intelligence" {
		t.Errorf("records: %+v, %+v", a, b)
	}
	// The failed attempt's bytes were deleted: only two files are stored.
	n := 0
	st := storageOf(t, e)
	st.Walk(ctx, func(string, time.Time) error { n++; return nil })
	if n != 2 {
		t.Errorf("%d stored files, want 2", n)
	}
}

func TestOutputDefaultsToFiles(t *testing.T) {
	e := spooltest.New(t, nil, map[string]spool.Handler{
		"one": spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
			_, err := job.CreateFile(ctx, bytes.NewReader(pngBytes(t, 4, 4)), &spool.File{Filename: "t.png"})
			return err
		}),
	})
	task := spooltest.CreateAndWait(t, e, spool.Request{Kind: "one"})
	var f spool.File
	if err := json.Unmarshal(task.Output, &f); err != nil || f.ID == "" || f.Width != 4 || f.Filename != "t.png" {
		t.Errorf("output = %s, want the one output file", task.Output)
	}
}

func TestKindsAvailability(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	e := openFile(t, spool.Config{Path: path})
	e.Register("needs-tool", checkedHandler{err: errors.New("frobnicate not found in PATH: install frobnicate")})
	e.Register("fine", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	// Not started: a pure client accepts every known kind.
	if _, err := e.Create(ctx, spool.Request{Kind: "needs-tool"}); err != nil {
		t.Fatalf("pure client refused an unavailable kind: %v", err)
	}
	if _, err := e.Create(ctx, spool.Request{Kind: "video", URL: "https://example.com/a.mp4"}); err != nil {
		t.Fatalf("pure client refused a built-in kind: %v", err)
	}
	infos := map[string]spool.KindInfo{}
	for _, k := range e.Kinds(ctx) {
		infos[k.Kind] = k
	}
	if len(infos) != 17 {
		t.Errorf("%d kinds, want the 15 built-in and 2 registered", len(infos))
	}
	if k := infos["needs-tool"]; k.Available || !strings.Contains(k.Reason, "install frobnicate") {
		t.Errorf("needs-tool: %+v", k)
	}
	if k := infos["video"]; k.Available || !strings.Contains(k.Reason, "no handler") || k.Spec == nil {
		t.Errorf("video: %+v", k)
	}
	if k := infos["fine"]; !k.Available {
		t.Errorf("fine: %+v", k)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := e.Create(ctx, spool.Request{Kind: "needs-tool"})
	var ve *spool.ValidationError
	if !errors.Is(err, spool.ErrKindUnavailable) || !errors.As(err, &ve) || ve.Field != "kind" ||
		!strings.Contains(err.Error(), "install frobnicate") {
		t.Errorf("started engine, unavailable kind: %v", err)
	}
	if _, err := e.Create(ctx, spool.Request{Kind: "fine"}); err != nil {
		t.Errorf("available kind refused: %v", err)
	}
	// An engine that lets other processes run what it cannot accepts it.
	e2 := openFile(t, spool.Config{Path: path, AcceptUnavailableKinds: true})
	e2.Register("fine", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	if err := e2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Create(ctx, spool.Request{Kind: "video", URL: "https://example.com/a.mp4"}); err != nil {
		t.Errorf("AcceptUnavailableKinds: %v", err)
	}
}

type checkedHandler struct{ err error }

func (h checkedHandler) Handle(context.Context, *spool.Job) error { return nil }
func (h checkedHandler) Check(context.Context) error              { return h.err }

func TestDirStorageConformance(t *testing.T) {
	spooltest.TestStorage(t, func(t *testing.T) spool.Storage {
		e := openFile(t, spool.Config{DataDir: t.TempDir()})
		return storageOf(t, e)
	})
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

func storageOf(t *testing.T, e *spool.Engine) spool.Storage {
	t.Helper()
	st, err := e.Storage()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestDownloadProgress: a url input's download is the first tenth of the
// task's progress, reported as the bytes arrive, and the handler's own
// progress counts from there.
func TestDownloadProgress(t *testing.T) {
	ctx := ctxT(t)
	const chunks, chunk = 20, 64 << 10
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(chunks*chunk))
		for range chunks {
			w.Write(make([]byte, chunk))
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	var seen []int
	e := openFile(t, spool.Config{AllowPrivateNetworks: true, ProgressInterval: time.Millisecond,
		OnEvent: func(ev spool.Event) {
			if ev.Type == spool.EventProgress {
				mu.Lock()
				seen = append(seen, ev.Task.Progress)
				mu.Unlock()
			}
		}})
	release := make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the engine's Close, which waits for the handler
	e.Register("fetch", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		if _, err := job.InputPath(ctx); err != nil {
			return err
		}
		job.Progress(50)
		<-release
		return nil
	}))
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	task, err := e.Create(ctx, spool.Request{Kind: "fetch", URL: srv.URL + "/in.bin"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := e.Get(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Progress == 55 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress %d, want 55 (10 for the download, then half of the rest)", got.Progress)
		}
		time.Sleep(5 * time.Millisecond)
	}
	letGo()
	if _, err := e.Wait(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	during := 0
	for _, p := range seen {
		if p > 0 && p < 10 {
			during++
		}
	}
	if during < 2 {
		t.Errorf("progress events %v: want at least 2 between 0 and 10 while downloading", seen)
	}
}
