package ui_test

import (
	"net/http"
	"net/url"
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
