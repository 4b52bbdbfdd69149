package ui_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
	"github.com/spoolrun/spool/ui"
	"github.com/spoolrun/spool/webhook"
)

// TestAuthRequired: without a session every page redirects to the login
// form and every stream, file and action is refused.
func TestAuthRequired(t *testing.T) {
	v := newEnv(t, nil)
	task := v.create(spool.Request{Kind: "echo"})
	f := v.upload(8, 8)
	for _, p := range []string{"/ui/", "/ui/tasks", "/ui/tasks/" + task.ID, "/ui/new", "/ui/tasks?status=pending"} {
		res, _ := v.get(p)
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/ui/login?next=") {
			t.Errorf("GET %s: status %d, Location %q; want a redirect to the login", p, res.StatusCode, res.Header.Get("Location"))
		}
	}
	for _, p := range []string{"/ui/files/" + f.ID + "/content", "/ui/tasks/" + task.ID + "/row"} {
		if res, _ := v.get(p); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s: status %d, want 401", p, res.StatusCode)
		}
	}
	if res, _ := v.get("/ui/events", "Accept", "text/event-stream"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /ui/events: status %d, want 401", res.StatusCode)
	}
	for _, p := range []string{"/ui/tasks/" + task.ID + "/cancel", "/ui/tasks/" + task.ID + "/delete", "/ui/tasks/" + task.ID + "/retry", "/ui/tasks", "/ui/logout"} {
		if res, _ := v.post(p, url.Values{"kind": {"echo"}}); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s: status %d, want 401", p, res.StatusCode)
		}
	}
	// The login page and the assets are public.
	if res, body := v.get("/ui/login"); res.StatusCode != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Errorf("GET /ui/login: status %d", res.StatusCode)
	}
	if res, _ := v.get("/ui/static/app.js"); res.StatusCode != http.StatusOK {
		t.Errorf("GET /ui/static/app.js: status %d", res.StatusCode)
	}
	// A wrong token does not log in.
	if res, body := v.post("/ui/login", url.Values{"token": {"nope"}}); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
		t.Errorf("bad token: status %d", res.StatusCode)
	}
	if n, _ := v.e.List(context.Background(), nil); len(n.Tasks) != 1 {
		t.Errorf("%d tasks, want the 1 created: a refused action did something", len(n.Tasks))
	}
}

// TestLoginCookie: the session cookie is HttpOnly, SameSite=Strict, holds
// no token, and a tampered one is refused.
func TestLoginCookie(t *testing.T) {
	v := newEnv(t, nil)
	res, _ := v.post("/ui/login", url.Values{"token": {testToken}, "next": {"/ui/tasks?kind=echo"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/tasks?kind=echo" {
		t.Fatalf("login: status %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, k := range res.Cookies() {
		if k.Name == "spool_session" {
			c = k
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path /ui/", c)
	}
	if strings.Contains(c.Value, testToken) {
		t.Fatal("the cookie holds the token")
	}
	if res, body := v.get("/ui/"); res.StatusCode != http.StatusOK || !strings.Contains(body, "tester") {
		t.Fatalf("GET /ui/ logged in: status %d", res.StatusCode)
	}
	// Another site as next goes home instead.
	for _, next := range []string{"https://evil.example/", "//evil.example/ui/", "/elsewhere"} {
		res, _ := v.post("/ui/login", url.Values{"token": {testToken}, "next": {next}})
		if loc := res.Header.Get("Location"); loc != "/ui/" {
			t.Errorf("next %q: Location %q, want /ui/", next, loc)
		}
	}
	// Tampered: another user's name under the same signature.
	parts := strings.Split(c.Value, ".")
	for _, bad := range []string{"YWRtaW4." + parts[1] + "." + parts[2], parts[0] + ".9999999999." + parts[2], c.Value + "x", "junk"} {
		req, _ := http.NewRequest("GET", v.srv.URL+"/ui/", nil)
		req.AddCookie(&http.Cookie{Name: "spool_session", Value: bad})
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Errorf("cookie %q: status %d, want a redirect to login", bad, res.StatusCode)
		}
	}
	// Logging out clears the cookie.
	_, body := v.get("/ui/")
	if res, _ := v.post("/ui/logout", url.Values{"csrf": {csrfOf(t, body)}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", res.StatusCode)
	}
	if res, _ := v.get("/ui/"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout: status %d, want a redirect", res.StatusCode)
	}
}

// TestCSRF: an action without the CSRF token, with another session's, or
// from another origin is refused and does nothing.
func TestCSRF(t *testing.T) {
	v := newEnv(t, nil)
	csrf := v.login()
	task := v.create(spool.Request{Kind: "slow"})
	path := "/ui/tasks/" + task.ID + "/cancel"
	cases := []struct {
		name string
		form url.Values
		hdr  []string
	}{
		{"no token", url.Values{}, nil},
		{"wrong token", url.Values{"csrf": {"AAAA" + csrf[4:]}}, nil},
		{"cross-site", url.Values{"csrf": {csrf}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"other origin", url.Values{"csrf": {csrf}}, []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example"}},
	}
	for _, c := range cases {
		if res, _ := v.post(path, c.form, c.hdr...); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", c.name, res.StatusCode)
		}
	}
	if got, _ := v.e.Get(context.Background(), task.ID); got.Status == spool.StatusCancelled {
		t.Fatal("a refused cancel cancelled the task")
	}
	// A form posted to create without the token creates nothing.
	if res, _ := v.post("/ui/tasks", url.Values{"kind": {"echo"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("create without token: status %d, want 403", res.StatusCode)
	}
	if res, _ := v.post(path, url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel with the token: status %d", res.StatusCode)
	}
	if got := v.wait(task.ID); got.Status != spool.StatusCancelled {
		t.Fatalf("status %s, want cancelled", got.Status)
	}
}

// TestPages: the overview, list, task page, create form and a workflow
// render with what they should show.
func TestPages(t *testing.T) {
	v := newEnv(t, nil)
	v.login()
	in := v.upload(40, 30)
	img := v.create(spool.Request{Kind: "image", FileID: in.ID, Ref: "thumb", Options: map[string]any{"width": 20, "format": "png"}})
	v.wait(img.ID)
	wf := v.create(spool.Request{Kind: "workflow", FileID: in.ID, Workflow: []spool.Step{
		{Kind: "image", Options: map[string]any{"width": 10, "format": "png"}, Next: []spool.Step{{Kind: "echo", Ref: "after"}}},
		{Kind: "conditions", Options: map[string]any{"conditions": []any{map[string]any{"prop": "width", "operator": "gt", "value": 1000}}},
			Next: []spool.Step{{Kind: "echo", Ref: "big"}}},
	}})
	v.wait(wf.ID)
	checks := []struct {
		path string
		want []string
	}{
		{"/ui/", []string{"Overview", "queue depth", "image", "unavailable", "Finished per minute"}},
		{"/ui/tasks", []string{img.ID, wf.ID, "completed"}},
		{"/ui/tasks?kind=image&ref=thumb", []string{img.ID}},
		{"/ui/tasks/" + img.ID, []string{"completed", `<img src="/ui/files/`, `data-width="20"`, "task.created", "task.completed", "Retry as new task", "Delete"}},
		{"/ui/tasks/" + wf.ID, []string{"Workflow", `data-step="workflow[0]"`, `data-step="workflow[0].next[0]"`, `data-step="workflow[1].next[0]"`, "skipped", "✗ width"}},
		{"/ui/new", []string{`name="opt.image.width"`, `name="opt.image.format"`, `<option>png</option>`, `name="file"`}},
		{"/ui/tasks?parent=" + wf.ID, []string{"step of"}},
	}
	for _, c := range checks {
		res, body := v.get(c.path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", c.path, res.StatusCode)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: no %q in the page", c.path, w)
			}
		}
	}
	if res, _ := v.get("/ui/tasks?kind=image&ref=thumb"); res.StatusCode != http.StatusOK {
		t.Fatal(res.StatusCode)
	}
	if _, body := v.get("/ui/tasks?kind=image&ref=thumb"); strings.Contains(body, wf.ID) {
		t.Error("the ref filter kept the workflow")
	}
	for _, p := range []string{"/ui/tasks/task_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A", "/ui/nothing"} {
		if res, _ := v.get(p); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
		}
	}
	if res, _ := v.get("/ui/tasks?status=bogus"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("bad status filter: status %d, want 400", res.StatusCode)
	}
}

// TestPager: the next links of the list carry the filters and the cursor
// (a query that html/template escaped inside the href lost both), and
// lead through 45 tasks in pages of 20.
func TestPager(t *testing.T) {
	v := newEnv(t, nil)
	v.login()
	v.create(spool.Request{Kind: "echo", Ref: "other"})
	reqs := make([]spool.Request, 45)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: "echo", Ref: "page"}
	}
	made, err := v.e.CreateMany(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	next := regexp.MustCompile(`id="next-page" href="([^"]+)"`)
	row := regexp.MustCompile(`<tr id="row-(task_[0-9A-Z]+)"`)
	seen := map[string]bool{}
	var sizes []int
	for p := "/ui/tasks?ref=page"; p != ""; {
		res, body := v.get(p)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", p, res.StatusCode)
		}
		rows := row.FindAllStringSubmatch(body, -1)
		sizes = append(sizes, len(rows))
		for _, m := range rows {
			seen[m[1]] = true
		}
		p = ""
		if m := next.FindStringSubmatch(body); m != nil {
			p = html.UnescapeString(m[1])
		}
		if len(sizes) > 3 {
			t.Fatalf("more than 3 pages: %v", sizes)
		}
	}
	if !slices.Equal(sizes, []int{20, 20, 5}) || len(seen) != 45 {
		t.Fatalf("pages of %v tasks, %d distinct; want 20, 20, 5 and 45", sizes, len(seen))
	}
	for _, task := range made {
		if !seen[task.ID] {
			t.Errorf("task %s never listed", task.ID)
		}
	}
}

// TestActions: cancel, retry-as-new and delete, and delete refused for a
// task that has not finished.
func TestActions(t *testing.T) {
	v := newEnv(t, nil)
	csrf := v.login()
	ctx := context.Background()
	slow := v.create(spool.Request{Kind: "slow"})
	v.waitStatus(slow.ID, spool.StatusProcessing)
	if res, _ := v.post("/ui/tasks/"+slow.ID+"/delete", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusConflict {
		t.Errorf("delete a running task: status %d, want 409", res.StatusCode)
	}
	if res, _ := v.post("/ui/tasks/"+slow.ID+"/cancel", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: status %d", res.StatusCode)
	}
	v.wait(slow.ID)

	echo := v.create(spool.Request{Kind: "echo", Ref: "r1", Folder: "f1", Options: map[string]any{"x": 1}})
	v.wait(echo.ID)
	res, _ := v.post("/ui/tasks/"+echo.ID+"/retry", url.Values{"csrf": {csrf}})
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/tasks/task_") {
		t.Fatalf("retry: status %d, Location %q", res.StatusCode, loc)
	}
	again, err := v.e.Get(ctx, strings.TrimPrefix(loc, "/ui/tasks/"))
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == echo.ID || again.Kind != "echo" || again.Options["ref"] != "r1" || again.Options["folder"] != "f1" || again.Options["x"] != int64(1) || again.CreatedBy != "tester" {
		t.Errorf("retried task %+v, want echo with the same options, created by tester", again)
	}

	if res, _ := v.post("/ui/tasks/"+echo.ID+"/delete", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: status %d", res.StatusCode)
	}
	if _, err := v.e.Get(ctx, echo.ID); err == nil {
		t.Error("the deleted task is still there")
	}
}

// TestRetryStep: retrying a workflow's step makes a task of its own on
// the step's input, without the step's next steps.
func TestRetryStep(t *testing.T) {
	v := newEnv(t, nil)
	csrf := v.login()
	in := v.upload(30, 20)
	wf := v.create(spool.Request{Kind: "workflow", FileID: in.ID, Workflow: []spool.Step{
		{Kind: "image", Options: map[string]any{"width": 10, "format": "png"}, Next: []spool.Step{{Kind: "echo"}}}}})
	wf = v.wait(wf.ID)
	var step string
	for _, s := range wf.Workflow {
		if s.Kind == "image" {
			step = s.ID
		}
	}
	res, _ := v.post("/ui/tasks/"+step+"/retry", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("retry a step: status %d", res.StatusCode)
	}
	again := v.wait(strings.TrimPrefix(res.Header.Get("Location"), "/ui/tasks/"))
	if again.Status != spool.StatusCompleted || again.ParentID != "" || len(again.Steps) != 0 || again.Input == nil || again.Input.ID != in.ID {
		t.Fatalf("retried step: %s %q, parent %q, %d steps, input %+v", again.Status, again.Error, again.ParentID, len(again.Steps), again.Input)
	}
}

// TestCreateForm: the form creates a task from an upload with typed
// options, and shows a validation error with the values kept.
func TestCreateForm(t *testing.T) {
	v := newEnv(t, nil)
	csrf := v.login()
	send := func(fields map[string]string, file []byte) (*http.Response, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, val := range fields {
			_ = mw.WriteField(k, val)
		}
		if file != nil {
			fw, _ := mw.CreateFormFile("file", "upload.png")
			_, _ = fw.Write(file)
		}
		_ = mw.Close()
		req, _ := http.NewRequest("POST", v.srv.URL+"/ui/tasks", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		return v.send(req)
	}
	res, _ := send(map[string]string{"csrf": csrf, "kind": "image", "ref": "mine", "opt.image.width": "16",
		"opt.image.format": "png", "opt.video.width": "999"}, pngBytes(t, 32, 32))
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/tasks/task_") {
		t.Fatalf("create: status %d, Location %q", res.StatusCode, loc)
	}
	task := v.wait(strings.TrimPrefix(loc, "/ui/tasks/"))
	if task.Status != spool.StatusCompleted || task.Options["width"] != int64(16) || task.Options["ref"] != "mine" || task.CreatedBy != "tester" {
		t.Fatalf("task %+v", task)
	}
	res, body := send(map[string]string{"csrf": csrf, "kind": "image", "url": "https://example.com/a.png", "opt.image.width": "-5"}, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "width") || !strings.Contains(body, `value="-5"`) {
		t.Fatalf("bad width: status %d\n%s", res.StatusCode, body)
	}
	if res, _ := send(map[string]string{"csrf": csrf, "kind": "image", "opt.image.width": "wide"}, nil); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("non-numeric width: status %d", res.StatusCode)
	}
}

// TestPreviewTracks: a video's player gets the subtitles made for it as a
// track, and a chapters output's chapters are listed.
func TestPreviewTracks(t *testing.T) {
	v := newEnv(t, nil)
	v.login()
	video, err := v.e.CreateFile(context.Background(), strings.NewReader("not really a video"),
		&spool.FileParams{Filename: "clip.mp4", Type: "video/mp4"})
	if err != nil {
		t.Fatal(err)
	}
	task := v.create(spool.Request{Kind: "subs", FileID: video.ID})
	if got := v.wait(task.ID); got.Status != spool.StatusCompleted {
		t.Fatalf("subs task %s: %s", got.Status, got.Error)
	}
	chaps := v.create(spool.Request{Kind: "chaps"})
	v.wait(chaps.ID)
	if _, body := v.get("/ui/tasks/" + chaps.ID); !strings.Contains(body, "<time>1m 1s</time>–<time>2m 5s</time> The middle part") {
		t.Errorf("chapters not listed:\n%s", body)
	}
	_, body := v.get("/ui/tasks/" + task.ID)
	for _, w := range []string{`<video controls preload="metadata" src="/ui/files/` + video.ID + `/content"`, `<track kind="subtitles" src="/ui/files/file_`, `srclang="en"`} {
		if !strings.Contains(body, w) {
			t.Errorf("no %q in the page", w)
		}
	}
}

// TestDeliveries: a task's page lists its webhook deliveries with each
// attempt.
func TestDeliveries(t *testing.T) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer recv.Close()
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	v := newEnv(t, nil, func(c *spool.Config) {
		c.AllowPrivateNetworks = true
		c.Webhooks.Secrets = []string{secret.Encode()}
	})
	v.login()
	task := v.create(spool.Request{Kind: "echo", WebhookURL: recv.URL + "/hook"})
	v.wait(task.ID)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ds, err := v.e.Deliveries(context.Background(), task.ID)
		if err != nil {
			t.Fatal(err)
		}
		done := len(ds) > 0
		for _, d := range ds {
			done = done && d.State == spool.DeliveryDelivered
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries not delivered: %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, body := v.get("/ui/tasks/" + task.ID)
	for _, w := range []string{"task.completed</span> → <span class=\"break\">" + recv.URL + "/hook", "d-delivered", "HTTP 200"} {
		if !strings.Contains(body, w) {
			t.Errorf("no %q in the page", w)
		}
	}
}

// TestFileContent: the previews' endpoint serves bytes with Range and
// the sandbox CSP.
func TestFileContent(t *testing.T) {
	v := newEnv(t, nil)
	v.login()
	f := v.upload(16, 16)
	res, body := v.get("/ui/files/"+f.ID+"/content", "Range", "bytes=0-7")
	if res.StatusCode != http.StatusPartialContent || body != "\x89PNG\r\n\x1a\n" {
		t.Fatalf("range: status %d, body %q", res.StatusCode, body)
	}
	if res.Header.Get("Content-Security-Policy") != "sandbox" || res.Header.Get("Content-Type") != "image/png" {
		t.Errorf("headers %v", res.Header)
	}
	res, body = v.get("/ui/files/" + f.ID + "/content")
	if res.StatusCode != http.StatusOK || int64(len(body)) != f.Filesize {
		t.Errorf("whole file: status %d, %d bytes, want %d", res.StatusCode, len(body), f.Filesize)
	}
	if res, _ := v.get("/ui/files/file_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A/content"); res.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: status %d", res.StatusCode)
	}
}

// TestEventsStream: the live stream sends a created task's events,
// after the page's cursor.
func TestEventsStream(t *testing.T) {
	v := newEnv(t, nil)
	v.login()
	before, _ := v.e.Store().LastEventID(context.Background())
	if before == "" {
		before = "start"
	}
	task := v.create(spool.Request{Kind: "echo"})
	v.wait(task.ID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", v.srv.URL+"/ui/events?after="+before+"&task="+task.ID, nil)
	res, err := v.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("Content-Type %q", res.Header.Get("Content-Type"))
	}
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), `"type":"task.completed"`) {
		n, err := res.Body.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF || err != nil && n == 0 {
			t.Fatalf("stream ended: %v\n%s", err, got.String())
		}
	}
	if !strings.Contains(got.String(), `"type":"task.created"`) || !strings.Contains(got.String(), `"id":"`+task.ID+`"`) {
		t.Errorf("stream:\n%s", got.String())
	}
}

// TestTimelineFindsLateTask: a task created after many others still gets
// its events on its page, found past the older tasks' events.
func TestTimelineFindsLateTask(t *testing.T) {
	v := newEnv(t, nil)
	v.login()
	reqs := make([]spool.Request, 60)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: "echo"}
	}
	ts, err := v.e.CreateMany(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range ts {
		v.wait(task.ID)
	}
	late := v.create(spool.Request{Kind: "echo", Ref: "late"})
	v.wait(late.ID)
	_, body := v.get("/ui/tasks/" + late.ID)
	for _, w := range []string{"task.created", "task.processing", "task.completed"} {
		if !strings.Contains(body, w) {
			t.Errorf("no %s in the late task's timeline", w)
		}
	}
	if n := strings.Count(body, `<span class="evt">task.created</span>`); n != 1 {
		t.Errorf("%d created events in the timeline, want the task's 1", n)
	}
}

// TestAllowNoAuth: with auth off, pages need no login on a loopback
// listener, and actions still need the CSRF token.
func TestAllowNoAuth(t *testing.T) {
	v := newEnv(t, &ui.Options{AllowNoAuth: true, Tokens: []api.Token{{Name: "x", Secret: "y"}}})
	res, body := v.get("/ui/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "anonymous") {
		t.Fatalf("GET /ui/: status %d", res.StatusCode)
	}
	// A request that did not come through a loopback listener (here: no
	// listener at all) is refused.
	rec := httptest.NewRecorder()
	ui.NewHandler(v.e, &ui.Options{AllowNoAuth: true, Logger: slog.New(slog.DiscardHandler)}).
		ServeHTTP(rec, httptest.NewRequest("GET", "/ui/", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("AllowNoAuth off loopback: status %d, want 403", rec.Code)
	}
	task := v.create(spool.Request{Kind: "slow"})
	if res, _ := v.post("/ui/tasks/"+task.ID+"/cancel", url.Values{}); res.StatusCode != http.StatusForbidden {
		t.Errorf("cancel without CSRF token: status %d, want 403", res.StatusCode)
	}
	_, body = v.get("/ui/tasks/" + task.ID)
	if res, _ := v.post("/ui/tasks/"+task.ID+"/cancel", url.Values{"csrf": {csrfOf(t, body)}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("cancel: status %d", res.StatusCode)
	}
}

// TestSlowUpload: the create form's upload may take longer than the
// server's ReadTimeout, which is meant for small bodies.
func TestSlowUpload(t *testing.T) {
	v := newEnv(t, nil)
	csrf := v.login()
	srv := httptest.NewUnstartedServer(v.srv.Config.Handler)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	_ = mw.WriteField("csrf", csrf)
	_ = mw.WriteField("kind", "image")
	_ = mw.WriteField("opt.image.width", "8")
	_, _ = mw.CreateFormFile("file", "slow.png") // its header; the bytes trickle in below
	img := pngBytes(t, 16, 16)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(head.Bytes())
		// The bytes trickle in over about a second, past the timeout.
		for i := 0; i < len(img); i += len(img)/10 + 1 {
			time.Sleep(100 * time.Millisecond)
			_, _ = pw.Write(img[i:min(i+len(img)/10+1, len(img))])
		}
		_, _ = pw.Write([]byte("\r\n--" + mw.Boundary() + "--\r\n"))
		_ = pw.Close()
	}()
	req, _ := http.NewRequest("POST", srv.URL+"/ui/tasks", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, body := v.send(req)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("slow upload: status %d: %s", res.StatusCode, body)
	}
	if task := v.wait(strings.TrimPrefix(res.Header.Get("Location"), "/ui/tasks/")); task.Status != spool.StatusCompleted {
		t.Fatalf("task %s: %s", task.Status, task.Error)
	}
}

// TestThumbnailsPreview: a thumbnails task's page shows the video with
// the thumbnails track, and the sprite image.
func TestThumbnailsPreview(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("install ffmpeg to run this test")
	}
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	out, err := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x90:rate=10:duration=2",
		"-pix_fmt", "yuv420p", clip).CombinedOutput()
	if err != nil {
		t.Fatalf("make a clip: %v\n%s", err, out)
	}
	v := newEnv(t, nil)
	v.login()
	f, err := os.Open(clip)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	video, err := v.e.CreateFile(context.Background(), f, &spool.FileParams{Filename: "clip.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	task := v.create(spool.Request{Kind: "thumbnails", FileID: video.ID})
	if got := v.wait(task.ID); got.Status != spool.StatusCompleted {
		t.Fatalf("thumbnails: %s %s", got.Status, got.Error)
	}
	_, body := v.get("/ui/tasks/" + task.ID)
	for _, w := range []string{`<video controls preload="metadata" src="/ui/files/` + video.ID + `/content"`,
		`<track kind="metadata" src="/ui/files/file_`, `class="sprite" src="/ui/files/file_`} {
		if !strings.Contains(body, w) {
			t.Errorf("no %q in the page", w)
		}
	}
}
