package ui_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
	"github.com/spoolrun/spool/ui"
)

// TestBlankSecretLetsNobodyIn: a token configured with a blank secret
// (an unset environment variable) must not log in an empty token.
func TestBlankSecretLetsNobodyIn(t *testing.T) {
	v := newEnv(t, &ui.Options{Tokens: []api.Token{{Name: "web", Secret: ""}}})
	for _, tok := range []string{"", " "} {
		if res, _ := v.post("/ui/login", url.Values{"token": {tok}}); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("login with token %q: status %d, want 401", tok, res.StatusCode)
		}
	}
	if res, _ := v.get("/ui/tasks"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /ui/tasks after the logins: status %d, want a redirect to the login", res.StatusCode)
	}
}

// TestAllowNoAuthRefusesReboundNames: without auth, a page whose own name
// an attacker rebinds to 127.0.0.1 must not read the dashboard (and with
// it the CSRF token that its actions need).
func TestAllowNoAuthRefusesReboundNames(t *testing.T) {
	v := newEnv(t, &ui.Options{AllowNoAuth: true})
	port := v.srv.URL[strings.LastIndex(v.srv.URL, ":"):]
	for host, want := range map[string]int{
		"":                           http.StatusOK,
		"localhost" + port:           http.StatusOK,
		"rebind.evil.example" + port: http.StatusForbidden,
	} {
		req, err := http.NewRequest("GET", v.srv.URL+"/ui/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if res, _ := v.send(req); res.StatusCode != want {
			t.Errorf("Host %q: status %d, want %d", host, res.StatusCode, want)
		}
	}
}

// TestRefusedCreateKeepsNoUpload: a create form whose task is refused
// (an option out of range) leaves no stored upload behind; the user sends
// the file again with the corrected form.
func TestRefusedCreateKeepsNoUpload(t *testing.T) {
	v := newEnv(t, nil)
	csrf := v.login()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("csrf", csrf)
	_ = mw.WriteField("kind", "image")
	_ = mw.WriteField("opt.image.width", "-5")
	fw, _ := mw.CreateFormFile("file", "upload.png")
	_, _ = fw.Write(pngBytes(t, 16, 16))
	_ = mw.Close()
	req, _ := http.NewRequest("POST", v.srv.URL+"/ui/tasks", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if res, body := v.send(req); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "width") {
		t.Fatalf("create with width -5: status %d\n%s", res.StatusCode, body)
	}
	fs, err := v.e.ListFiles(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 0 {
		t.Errorf("%d files stored after a refused create, want 0: %s", len(fs), fs[0].Filename)
	}
}

// Logging out ends the session itself: a copy of the cookie taken before
// (another device, a log) no longer logs in, while another session of the
// same user goes on.
func TestLogoutRevokesSession(t *testing.T) {
	v := newEnv(t, nil)
	login := func() string {
		t.Helper()
		res, _ := v.post("/ui/login", url.Values{"token": {testToken}})
		for _, c := range res.Cookies() {
			if c.Name == "spool_session" {
				return c.Value
			}
		}
		t.Fatal("login set no session cookie")
		return ""
	}
	get := func(cookie string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", v.srv.URL+"/ui/", nil)
		req.AddCookie(&http.Cookie{Name: "spool_session", Value: cookie})
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// Within the same second: each login is its own session all the same.
	other := login()
	copied := login()
	if copied == other {
		t.Fatal("two logins made the same session")
	}
	if got := get(copied); got != http.StatusOK {
		t.Fatalf("the session before logout: status %d", got)
	}
	_, body := v.get("/ui/")
	if res, _ := v.post("/ui/logout", url.Values{"csrf": {csrfOf(t, body)}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", res.StatusCode)
	}
	if got := get(copied); got != http.StatusSeeOther {
		t.Errorf("a copy of the logged-out session: status %d, want a redirect to login", got)
	}
	if got := get(other); got != http.StatusOK {
		t.Errorf("another session of the same user after the logout: status %d, want 200", got)
	}
}

// openEvents opens the live stream at /ui/events?query, with lastID as
// Last-Event-ID unless "". The stream closes at the test's end.
func (v *env) openEvents(query, lastID string) *http.Response {
	v.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	v.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", v.srv.URL+"/ui/events?"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := v.c.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() { res.Body.Close() })
	return res
}

// eventCursor is an event id of the SQLite store's shape: seq in the
// ULID's entropy, at time ms.
func eventCursor(t *testing.T, ms, seq uint64) string {
	t.Helper()
	var id ulid.ULID
	var ent [10]byte
	binary.BigEndian.PutUint64(ent[2:], seq)
	if err := id.SetTime(ms); err != nil {
		t.Fatal(err)
	}
	if err := id.SetEntropy(ent[:]); err != nil {
		t.Fatal(err)
	}
	return "evt_" + id.String()
}

// TestEventsBadCursor: a cursor that is not an event id is a 400 naming
// where it came from. A stream that began and then ended at once on the
// store's refusal was opened again by the browser with the same cursor,
// every two seconds, for good; one that was not evt_… was followed from
// now on as if there were no cursor.
func TestEventsBadCursor(t *testing.T) {
	v := newEnv(t, nil)
	v.login()
	for _, c := range []struct{ query, lastID, field string }{
		{"after=evt_1", "", "after"},
		{"after=evt_zzzzzzzzzzzzzzzzzzzzzzzzzz", "", "after"}, // overflows a ULID
		{"after=evt_" + strings.Repeat("0", 70), "", "after"},
		{"after=garbage", "", "after"},
		{"after=task_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A", "", "after"},
		{"after=-1", "", "after"},
		{"after=start", "evt_not-an-id-but-long-enough", "Last-Event-ID"},
		{"", "9999999999", "Last-Event-ID"},
	} {
		res := v.openEvents(c.query, c.lastID)
		if res.StatusCode != http.StatusBadRequest {
			res.Body.Close() // a stream, maybe endless
			t.Errorf("?%s (Last-Event-ID %q): status %d, want 400", c.query, c.lastID, res.StatusCode)
			continue
		}
		b, _ := io.ReadAll(res.Body)
		if !strings.Contains(string(b), "invalid "+c.field+":") {
			t.Errorf("?%s (Last-Event-ID %q): the error does not name %s:\n%s", c.query, c.lastID, c.field, b)
		}
	}
}

// TestEventsCursorOutOfRange: a well-formed cursor past the newest event
// (another database's) streams the events from now on, where its id,
// sorting after them all, had every one skipped, for good; one before the
// oldest streams from the oldest.
func TestEventsCursorOutOfRange(t *testing.T) {
	v := newEnv(t, nil)
	v.login()
	old := v.create(spool.Request{Kind: "echo"})
	v.wait(old.ID)
	past := eventCursor(t, ulid.MaxTime(), 1<<40)
	streams := map[string]*http.Response{
		"after past the newest":         v.openEvents("after="+past, ""),
		"Last-Event-ID past the newest": v.openEvents("", past),
		"after past MaxInt64":           v.openEvents("after="+eventCursor(t, ulid.MaxTime(), math.MaxUint64), ""),
		"after before the oldest":       v.openEvents("after="+eventCursor(t, 0, 0), ""),
	}
	for name, res := range streams {
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", name, res.StatusCode)
		}
	}
	task := v.create(spool.Request{Kind: "echo"})
	var wg sync.WaitGroup
	for name, res := range streams {
		want := []string{`"id":"` + task.ID + `"`}
		if strings.Contains(name, "oldest") {
			want = append(want, `"id":"`+old.ID+`"`)
		}
		wg.Go(func() {
			if got, ok := readUntil(res.Body, want); !ok {
				t.Errorf("%s: the stream ended or stalled without %q:\n%s", name, want, got)
			}
		})
	}
	wg.Wait()
}

// readUntil reads r until it has held every one of want, or ends, or a
// generous deadline passes.
func readUntil(r io.ReadCloser, want []string) (string, bool) {
	var got strings.Builder
	done := make(chan bool, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			got.Write(buf[:n])
			if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(got.String(), w) }) {
				done <- true
				return
			}
			if err != nil {
				done <- false
				return
			}
		}
	}()
	select {
	case ok := <-done:
		return got.String(), ok
	case <-time.After(30 * time.Second):
		r.Close() // ends the read above
		<-done
		return got.String(), false
	}
}
