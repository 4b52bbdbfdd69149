package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/webhook"
)

// server is a running "spool serve".
type server struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // its exit, once done is closed
}

var servingLine = regexp.MustCompile(`msg=serving url=(http://\S+)`)

// startServe starts the binary's serve on a free loopback port and waits
// until it says where it listens.
func startServe(t *testing.T, bin string, args ...string) *server {
	t.Helper()
	args = append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)
	s := &server{cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	s.cmd.Env = append(os.Environ(), "SPOOL_TOKEN=") // only the flags' tokens
	pr, pw := io.Pipe()
	s.cmd.Stderr = pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.stderr, line)
			if m := servingLine.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		s.err = s.cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case s.url = <-found:
	case <-s.done:
		t.Fatalf("spool serve exited: %v\n%s", s.err, s.stderr)
	case <-time.After(time.Minute):
		t.Fatalf("spool serve did not say where it listens:\n%s", s.stderr)
	}
	return s
}

// stop sends SIGTERM and waits for the process to exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
}

// wait waits for the process to exit, and fails unless it exited 0.
func (s *server) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("spool serve did not exit:\n%s", s.stderr)
	}
	if s.err != nil {
		t.Fatalf("spool serve: %v\n%s", s.err, s.stderr)
	}
}

// call sends a JSON request with the token and decodes the answer into
// out, returning the response.
func call(t *testing.T, method, url, token string, body any, out any) *http.Response {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept-Version", "2025-08-20")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp
}

// waitStatus polls a task until it has status want.
func waitStatus(t *testing.T, s *server, token, id string, want spool.Status) *spool.Task {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var task spool.Task
		resp := call(t, http.MethodGet, s.url+"/tasks/"+id, token, nil, &task)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /tasks/%s: %d", id, resp.StatusCode)
		}
		if task.Status == want {
			return &task
		}
		if task.Status.Terminal() || time.Now().After(deadline) {
			t.Fatalf("task %s is %s (%s), want %s\n%s", id, task.Status, task.Error, want, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// slowServer serves a PNG at /in.png, and at /slow/NAME holds the first
// request for NAME until release(NAME) or the client goes, answering any
// later one at once.
type slowServer struct {
	*httptest.Server
	mu      sync.Mutex
	hits    map[string]*atomic.Int32
	started map[string]chan struct{}
	release map[string]chan struct{}
}

func newSlowServer(t *testing.T, png []byte) *slowServer {
	s := &slowServer{hits: map[string]*atomic.Int32{}, started: map[string]chan struct{}{},
		release: map[string]chan struct{}{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/in.png" {
			w.Header().Set("Content-Type", "image/png")
			w.Write(png)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/slow/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		hits, started, release := s.chans(name)
		if hits.Add(1) == 1 {
			close(started)
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name": %q}`, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slowServer) chans(name string) (*atomic.Int32, chan struct{}, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hits[name] == nil {
		s.hits[name] = &atomic.Int32{}
		s.started[name] = make(chan struct{})
		s.release[name] = make(chan struct{})
	}
	return s.hits[name], s.started[name], s.release[name]
}

// Acceptance 6: spool serve, built and started on a free loopback port,
// completes tasks created over HTTP with a token; SIGTERM with a task
// running lets it finish; a task cut by the shutdown deadline runs again,
// and completes, at the next start.
func TestServeEndToEnd(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	pngPath := writePNG(t, dir, 200, 100)
	png, err := os.ReadFile(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	web := newSlowServer(t, png)
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# name:secret\nci:s3cret\n\nother:0ther\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "spool.db")
	flags := []string{"--db", db, "--tokens-file", tokens, "--allow-private-networks"}
	const token = "s3cret"

	s := startServe(t, bin, flags...)
	if resp := call(t, http.MethodGet, s.url+"/tasks", "", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /tasks without a token: %d, want 401", resp.StatusCode)
	}
	// The dashboard sends a browser without a session to its login form;
	// the metrics want a token, as the API does.
	if resp := call(t, http.MethodGet, s.url+"/ui/login", "", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /ui/login: %d, want 200", resp.StatusCode)
	}
	if resp := call(t, http.MethodGet, s.url+"/metrics", "", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a token: %d, want 401", resp.StatusCode)
	}
	if resp := call(t, http.MethodGet, s.url+"/metrics", token, nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics: %d, want 200", resp.StatusCode)
	}

	// The seed's create call, on an uploaded file.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/files?filename=in.png", bytes.NewReader(png))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var file spool.File
	err = json.NewDecoder(resp.Body).Decode(&file)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /files: %d %v", resp.StatusCode, err)
	}
	var img spool.Task
	resp = call(t, http.MethodPost, s.url+"/tasks", token, map[string]any{"file_id": file.ID, "kind": "image",
		"width": 64, "format": "jpeg", "ref": "thumbnail"}, &img)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") == "" {
		t.Fatalf("POST /tasks: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A url input, fetched from the loopback server.
	var fromURL spool.Task
	call(t, http.MethodPost, s.url+"/tasks", token, map[string]any{"url": web.URL + "/in.png", "kind": "image",
		"width": 32}, &fromURL)
	for _, id := range []string{img.ID, fromURL.ID} {
		done := waitStatus(t, s, token, id, spool.StatusCompleted)
		if done.CreatedBy != "ci" {
			t.Errorf("task %s created_by %q, want the token's name ci", id, done.CreatedBy)
		}
	}

	// The client commands against the server.
	env := map[string]string{"SPOOL_URL": s.url, "SPOOL_TOKEN": token}
	if r := runCLI(t, env, "tasks", "ls", "--kind", "image"); r.code != 0 || !strings.Contains(r.stdout, img.ID) {
		t.Errorf("tasks ls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, env, "tasks", "wait", img.ID); r.code != 0 || !strings.Contains(r.stdout, `"completed"`) {
		t.Errorf("tasks wait: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, env, "tasks", "cancel", img.ID); r.code != exitFailed || !strings.Contains(r.stderr, "409") {
		t.Errorf("tasks cancel of a finished task: exit %d\n%s", r.code, r.stderr)
	}
	if r := runCLI(t, map[string]string{"SPOOL_URL": s.url, "SPOOL_TOKEN": "wrong"}, "tasks", "ls"); r.code != exitFailed ||
		!strings.Contains(r.stderr, "token_invalid") || strings.Contains(r.stderr, "wrong") {
		t.Errorf("tasks ls with a wrong token: exit %d\n%s", r.code, r.stderr)
	}
	if r := runCLI(t, env, "kinds"); r.code != 0 || !strings.Contains(r.stdout, "image") {
		t.Errorf("kinds: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// SIGTERM while a task runs: the server waits for it, and it completes.
	var running spool.Task
	call(t, http.MethodPost, s.url+"/tasks", token, map[string]any{"kind": "http", "url": web.URL + "/slow/drain"}, &running)
	_, started, release := web.chans("drain")
	recv(t, started, "the drained task's request")
	waitStatus(t, s, token, running.ID, spool.StatusProcessing)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "shutting down")
	close(release)
	s.wait(t)

	// Restart with a short shutdown deadline: a task still running then is
	// put back, and runs again at the next start.
	s = startServe(t, bin, append(flags, "--shutdown-timeout", "200ms")...)
	if got := waitStatus(t, s, token, running.ID, spool.StatusCompleted); !strings.Contains(string(got.Output), `"drain"`) {
		t.Errorf("drained task's output: %s", got.Output)
	}
	if hits, _, _ := web.chans("drain"); hits.Load() != 1 {
		n := hits.Load()
		t.Errorf("the drained task's request was sent %d times, want once", n)
	}
	var cut spool.Task
	call(t, http.MethodPost, s.url+"/tasks", token, map[string]any{"kind": "http", "url": web.URL + "/slow/cut"}, &cut)
	_, started, _ = web.chans("cut")
	recv(t, started, "the cut task's request")
	s.stop(t)
	if !strings.Contains(s.stderr.String(), "stopped") {
		t.Errorf("no stopped line in the log:\n%s", s.stderr)
	}

	s = startServe(t, bin, flags...)
	if got := waitStatus(t, s, token, cut.ID, spool.StatusCompleted); !strings.Contains(string(got.Output), `"cut"`) {
		t.Errorf("recovered task's output: %s", got.Output)
	}
	if hits, _, _ := web.chans("cut"); hits.Load() != 2 {
		n := hits.Load()
		t.Errorf("the cut task's request was sent %d times, want twice", n)
	}
	s.stop(t)
	if strings.Contains(s.stderr.String(), token) {
		t.Errorf("the log shows a token's secret:\n%s", s.stderr)
	}
}

// waitLog waits for the server's log to say msg.
func waitLog(t *testing.T, s *server, msg string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(s.stderr.String(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", msg, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeRefusesUnsafeAuth(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no token", []string{"serve", "--addr", "127.0.0.1:0"}, nil, "no token"},
		{"no-auth on every interface", []string{"serve", "--no-auth", "--addr", ":0"}, nil, "only loopback"},
		{"no-auth on a public address", []string{"serve", "--no-auth", "--addr", "192.0.2.1:8080"}, nil, "only loopback"},
		{"bad tokens file line", []string{"serve", "--tokens-file", "TOKENS"}, nil, "line 2: want name:secret"},
		{"missing tokens file", []string{"serve", "--tokens-file", "/nonexistent/tokens"}, nil, "tokens file"},
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("a:b\nnosecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{}, tt.args...)
			for i, a := range args {
				if a == "TOKENS" {
					args[i] = tokens
				}
			}
			args = append(args, "--db", filepath.Join(dir, "never.db"))
			r := runCLI(t, tt.env, args...)
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr lacks %q:\n%s", r.code, tt.want, r.stderr)
			}
			if strings.Contains(r.stderr, "nosecret") {
				t.Errorf("a tokens file line shows in the error:\n%s", r.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "never.db")); err == nil {
		t.Error("a refused serve created its database")
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.1.2.3:0": true, "[::1]:80": true, "localhost:8080": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:80": false, "10.0.0.1:80": false, "example.com:80": false, "bad": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestNextHint(t *testing.T) {
	tests := []struct{ link, want string }{
		{`<http://h/tasks?limit=20&page=2>; rel="next", <http://h/tasks?page=1>; rel="first"`, "--page 2"},
		{`<http://h/tasks?page=1>; rel="first", <http://h/tasks?after=task_01X&limit=5>; rel="next"`, "--after task_01X"},
		{`<http://h/tasks?page=1>; rel="first"`, ""},
		{``, ""},
	}
	for _, tt := range tests {
		if got := nextHint(tt.link); got != tt.want {
			t.Errorf("nextHint(%q) = %q, want %q", tt.link, got, tt.want)
		}
	}
}

// recv waits for ch to be closed or to send.
func recv(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no %s", what)
	}
}

// A SIGTERM as soon as the server says it serves stops it gracefully: the
// signal is caught from before that line.
func TestServeStopsAtOnce(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	for i := range 5 {
		s := startServe(t, bin, "--db", filepath.Join(dir, fmt.Sprintf("%d.db", i)), "--token", "s3cret")
		s.stop(t)
		if !strings.Contains(s.stderr.String(), "stopped") {
			t.Fatalf("run %d: no stopped line in the log:\n%s", i, s.stderr)
		}
	}
}

// With --webhook-secret, a task's webhook_url gets its status changes,
// signed with that secret; a bad secret is refused without showing it.
func TestServeWebhooks(t *testing.T) {
	bin := binary(t)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sec, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var types []string
	hook := httptest.NewServer(webhook.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Type string }
		json.NewDecoder(r.Body).Decode(&env)
		mu.Lock()
		types = append(types, env.Type)
		mu.Unlock()
	}), nil, sec))
	t.Cleanup(hook.Close)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(target.Close)

	dir := t.TempDir()
	s := startServe(t, bin, "--db", filepath.Join(dir, "spool.db"), "--token", "s3cret",
		"--allow-private-networks", "--webhook-secret", secret)
	var task spool.Task
	call(t, http.MethodPost, s.url+"/tasks", "s3cret", map[string]any{"kind": "http", "url": target.URL,
		"webhook_url": hook.URL}, &task)
	waitStatus(t, s, "s3cret", task.ID, spool.StatusCompleted)
	want := []string{"task.created", "task.processing", "task.completed"}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got := slices.Clone(types)
		mu.Unlock()
		if slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verified deliveries %v, want %v\n%s", got, want, s.stderr)
		}
	}
	s.stop(t)

	r := runCLI(t, nil, "serve", "--token", "x", "--db", filepath.Join(dir, "other.db"), "--webhook-secret", "whsec_not-base64!")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--webhook-secret") || strings.Contains(r.stderr, "not-base64!") {
		t.Errorf("a bad webhook secret: exit %d\n%s", r.code, r.stderr)
	}
}

// A port in use, or a bad address, fails before the database is made.
func TestServeBadAddressMakesNoDatabase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	for i, addr := range []string{ln.Addr().String(), "127.0.0.1:99999", "nonsense"} {
		db := filepath.Join(dir, fmt.Sprintf("%d.db", i))
		if r := runCLI(t, nil, "serve", "--token", "x", "--db", db, "--addr", addr); r.code == 0 {
			t.Errorf("serve on %s: exit 0", addr)
		}
		if _, err := os.Stat(db); err == nil {
			t.Errorf("serve on %s left %s behind", addr, db)
		}
	}
}
