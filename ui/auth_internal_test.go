package ui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
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
