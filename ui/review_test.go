package ui_test

import (
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
