package ui_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

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
