package serve

import "testing"

func TestTokensName(t *testing.T) {
	var ts Tokens
	if _, ok := ts.Name(""); ok {
		t.Error("the zero Tokens accepted an empty secret")
	}
	ts.Add("first", "one-secret")
	ts.Add("second", "two-secret")
	ts.Add("again", "two-secret")       // the first of equal secrets wins
	ts.Add("spaced", " three-secret\t") // as a tokens file's line may have it
	for _, c := range []struct {
		secret, name string
		ok           bool
	}{
		{"one-secret", "first", true},
		{" two-secret ", "second", true},
		{"two-secre", "", false},
		{"three-secret", "spaced", true},
		{"", "", false},
	} {
		if name, ok := ts.Name(c.secret); name != c.name || ok != c.ok {
			t.Errorf("Name(%q) = %q, %v; want %q, %v", c.secret, name, ok, c.name, c.ok)
		}
	}
	if ts.Len() != 4 {
		t.Errorf("Len = %d", ts.Len())
	}
}

// TestTokensBlankSecret: a token configured with a blank secret (an unset
// environment variable) must not let in a request with an empty token.
func TestTokensBlankSecret(t *testing.T) {
	var ts Tokens
	ts.Add("unset", "")
	ts.Add("spaces", "  ")
	for _, s := range []string{"", " ", "  "} {
		if name, ok := ts.Name(s); ok {
			t.Errorf("Name(%q) = %q, true: a blank secret let a blank token in", s, name)
		}
	}
	if ts.Len() != 0 {
		t.Errorf("Len = %d, want 0: blank secrets are not tokens", ts.Len())
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:8080": true, "localhost.:80": true,
		"127.0.0.1": true, "127.0.0.1:8080": true, "127.9.9.9:1": true,
		"[::1]:8080": true, "[::1]": true, "::1": true, "[::ffff:127.0.0.1]:80": true,
		"": false, "evil.example": false, "evil.example:8080": false, "localhost.evil.example": false,
		"10.0.0.1:80": false, "[::2]:80": false, "0.0.0.0:8080": false,
	} {
		if got := LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
