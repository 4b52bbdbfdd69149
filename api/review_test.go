package api_test

import (
	"testing"

	"github.com/spoolrun/spool/api"
)

// TestBlankSecretLetsNobodyIn: a token whose secret is blank, as one read
// from an unset environment variable (Secret: os.Getenv("SPOOL_TOKEN"),
// the package doc's example), must not let in a request that sends an
// empty bearer token. HTTP trims the ASCII spaces after "Bearer ", but
// not a no-break space, which the secret's own trimming removes.
func TestBlankSecretLetsNobodyIn(t *testing.T) {
	v := newEnv(t, &api.Options{Tokens: []api.Token{{Name: "web", Secret: ""}}})
	for _, auth := range []string{"Bearer ", "Bearer \u00a0", "bearer \u3000"} {
		if res, b := v.do("GET", "/tasks", nil, "Authorization", auth); res.StatusCode != 401 {
			t.Errorf("Authorization %q: status %d %s, want 401", auth, res.StatusCode, b)
		}
	}
}
