package api_test

import (
	"net/http"
	"strings"
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

// TestAllowNoAuthRefusesOtherSites: without a token, a browser page of
// another site must not create tasks (a fetch with a Blob body sends no
// Content-Type and needs no CORS preflight), and a page that rebinds its
// own name to 127.0.0.1 must not reach the API either.
func TestAllowNoAuthRefusesOtherSites(t *testing.T) {
	v := newEnv(t, &api.Options{AllowNoAuth: true})
	send := func(method, host string, hdr ...string) int {
		t.Helper()
		req, err := http.NewRequest(method, v.srv.URL+"/tasks", strings.NewReader(`{"kind": "echo"}`))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := v.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	port := v.srv.URL[strings.LastIndex(v.srv.URL, ":"):]
	for _, c := range []struct {
		name, method, host string
		hdr                []string
		want               int
	}{
		{"curl", "POST", "", nil, 201},
		{"localhost", "POST", "localhost" + port, nil, 201},
		{"ipv6 loopback", "GET", "[::1]" + port, nil, 200},
		{"same-origin page", "POST", "", []string{"Sec-Fetch-Site", "same-origin"}, 201},
		{"cross-site page", "POST", "", []string{"Sec-Fetch-Site", "cross-site"}, 401},
		{"cross-site page, old browser", "POST", "", []string{"Origin", "https://evil.example"}, 401},
		{"rebound name", "GET", "rebind.evil.example" + port, nil, 401},
		{"rebound name, POST", "POST", "rebind.evil.example" + port, []string{"Sec-Fetch-Site", "same-origin"}, 401},
	} {
		if got := send(c.method, c.host, c.hdr...); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	// A token still works from anywhere.
	v2 := newEnv(t, &api.Options{AllowNoAuth: true, Tokens: []api.Token{{Name: "tester", Secret: testToken}}})
	if res, b := v2.do("POST", "/tasks", `{"kind": "echo"}`, "Sec-Fetch-Site", "cross-site"); res.StatusCode != 201 {
		t.Errorf("with a token: status %d %s", res.StatusCode, b)
	}
}

// TestEventsBadCursor: a cursor that looks like an event id but is not
// one is a 400 naming where it came from, not a stream that begins and
// then ends at once, which a client would reopen with the same cursor
// forever.
func TestEventsBadCursor(t *testing.T) {
	v := newEnv(t, nil)
	v.createEchoes(1)
	for _, c := range []struct{ path, lastID, field string }{
		{"/events?after=evt_1", "", "after"},
		{"/events?after=evt_zzzzzzzzzzzzzzzzzzzzzzzzzz", "", "after"},
		{"/events", "evt_not-an-id-but-long-enough", "Last-Event-ID"},
	} {
		res, b := v.do("GET", c.path, nil, "Last-Event-ID", c.lastID)
		if res.StatusCode != 400 {
			t.Errorf("%s (%s): status %d %q, want 400", c.path, c.field, res.StatusCode, b)
			continue
		}
		e := decode[errBody](t, b)
		if e.Error.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.path, e.Error.Field, c.field)
		}
		// The store's reason names the cursor already: once, not twice.
		if n := strings.Count(e.Error.Message, "is not an event id"); n != 1 {
			t.Errorf("%s: message %q says it %d times", c.path, e.Error.Message, n)
		}
	}
}

// TestListHugePage: a page far past the end is [] or a 400 naming page,
// never the first page's tasks, which a skip of (page-1)*limit rows that
// overflows int64 gave.
func TestListHugePage(t *testing.T) {
	v := newEnv(t, nil)
	v.createEchoes(2)
	for _, q := range []string{"page=4611686018427387905&limit=2", "page=9223372036854775807&limit=100", "page=1099511627776&limit=100"} {
		res, b := v.do("GET", "/tasks?"+q, nil)
		switch {
		case res.StatusCode == 400:
			if e := decode[errBody](t, b); e.Error.Field != "page" {
				t.Errorf("%s: field %q, want page", q, e.Error.Field)
			}
		case res.StatusCode != 200 || strings.TrimSpace(string(b)) != "[]":
			t.Errorf("%s: status %d %.200s, want [] or a 400", q, res.StatusCode, b)
		}
	}
}

// TestTokenMissingNamesScheme: a 401 carries WWW-Authenticate, which
// HTTP requires of it, whether the token is missing or invalid.
func TestTokenMissingNamesScheme(t *testing.T) {
	v := newEnv(t, nil)
	for _, auth := range []string{"", "Bearer nope"} {
		res, _ := v.do("GET", "/tasks", nil, "Authorization", auth)
		if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: status %d, WWW-Authenticate %q", auth, res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	}
}
