package kinds

import (
	"context"
	"strings"
	"testing"
)

// TestNewRequestRefusesHeaders checks the request-time check of the
// headers, which matters for tasks stored before Create refused them.
func TestNewRequestRefusesHeaders(t *testing.T) {
	for _, name := range []string{"Host", "host", "Connection", "Keep-Alive", "Proxy-Connection",
		"Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer", "Trailers", "Transfer-Encoding", "upgrade"} {
		opts := map[string]any{"headers": map[string]any{"X-Ok": "1", name: "internal.example"}}
		req, err := newRequest(context.Background(), "GET", "http://192.0.2.1/", opts)
		if err == nil {
			t.Errorf("header %s: newRequest built a request for host %q with headers %v", name, req.Host, req.Header)
			continue
		}
		if !strings.Contains(err.Error(), `headers["`+name+`"]`) {
			t.Errorf("header %s: error %q does not name it", name, err)
		}
	}
	req, err := newRequest(context.Background(), "GET", "http://192.0.2.1/",
		map[string]any{"headers": map[string]any{"X-Ok": "1", "Authorization": "Bearer x"}})
	if err != nil {
		t.Fatal(err)
	}
	if req.Host != "192.0.2.1" || req.Header.Get("X-Ok") != "1" || req.Header.Get("Authorization") != "Bearer x" {
		t.Errorf("request to %s with headers %v", req.Host, req.Header)
	}
}
