package main

import "testing"

// TestBlankTokenIsNoToken: a blank --token or SPOOL_TOKEN is no token,
// so that serve refuses to start without one rather than start with a
// token that the handlers drop, refusing every request.
func TestBlankTokenIsNoToken(t *testing.T) {
	for _, secret := range []string{" ", "\t\n"} {
		tokens, err := loadTokens(secret, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(tokens) != 0 {
			t.Errorf("loadTokens(%q) = %d tokens, want none", secret, len(tokens))
		}
		if checkAuth("127.0.0.1:0", len(tokens), false) == nil {
			t.Errorf("secret %q: serve would start", secret)
		}
	}
}
