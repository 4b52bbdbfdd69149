package ui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// FuzzNext: wherever a login's next parameter points, the redirect that
// follows the login stays on this host, under the prefix.
func FuzzNext(f *testing.F) {
	for _, s := range []string{"/ui/tasks?status=failed", "//evil.example", `/ui/\evil.example`, "/ui/../..//evil.example",
		"https://evil.example/ui/", "/ui/%2e%2e/%2f%2fevil.example", "/\t/evil.example", "ui/x", ""} {
		f.Add(s)
	}
	h := &handler{prefix: "/ui"}
	base, _ := url.Parse("http://spool.example/ui/login")
	f.Fuzz(func(t *testing.T, next string) {
		rec := httptest.NewRecorder()
		http.Redirect(rec, httptest.NewRequest("POST", "/ui/login", nil), h.next(next), http.StatusSeeOther)
		loc := rec.Header().Get("Location")
		u, err := base.Parse(loc)
		if err != nil {
			return // a browser would not follow it either
		}
		if u.Host != base.Host || u.Scheme != base.Scheme {
			t.Fatalf("next %q redirects to %q, off this host", next, loc)
		}
	})
}

// TestSessionsOfOneSecondDiffer: two logins of the same token within one
// second are two sessions, so that logging out one (which revokes its
// cookie's value) leaves the other logged in.
func TestSessionsOfOneSecondDiffer(t *testing.T) {
	h := &handler{key: []byte("0123456789abcdef0123456789abcdef"), ttl: time.Hour}
	now := time.Now()
	first, second := h.newSession("web", now), h.newSession("web", now)
	if first == second {
		t.Fatalf("two logins in the same second made the same cookie %q", first)
	}
	check := func(cookie string) bool {
		r := httptest.NewRequest("GET", "/ui/", nil)
		r.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
		_, ok := h.session(r)
		return ok
	}
	if !check(first) || !check(second) {
		t.Fatal("a new session is not valid")
	}
	h.revoked.add(first, now.Add(h.ttl).Unix()) // as logout does
	if check(first) {
		t.Error("the logged-out session still logs in")
	}
	if !check(second) {
		t.Error("logging out one session ended the other session of the same token")
	}
}
