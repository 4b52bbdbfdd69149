package api_test

import (
	"strings"
	"testing"
)

// Found in review: errors an HTTP API client gets (and relays to whoever
// runs spool serve) named only Go Config fields, which neither can set.
// Each now also says what spool serve offers, or that it offers nothing.
func TestErrorHintsNameTheCLI(t *testing.T) {
	v := newEnv(t, nil)
	cases := []struct {
		name, body string
		want       []string
	}{
		{"kind unavailable", `{"kind": "broken"}`,
			[]string{"Config.AcceptUnavailableKinds", "spool serve has no such flag"}},
		{"file url", `{"kind": "image", "url": "file:///etc/hosts"}`,
			[]string{"Config.AllowLocalFiles", "spool serve has no such flag", "POST /files"}},
		{"private url", `{"kind": "image", "url": "http://10.0.0.1/a.png"}`,
			[]string{"Config.AllowPrivateNetworks", "spool serve and spool run --allow-private-networks"}},
		{"localhost url", `{"kind": "image", "url": "http://localhost/a.png"}`,
			[]string{"Config.AllowPrivateNetworks", "spool serve and spool run --allow-private-networks"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, b := v.do("POST", "/tasks", c.body)
			msg := decode[errBody](t, b).Error.Message
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not name %q", msg, w)
				}
			}
		})
	}
	// A file URL is refused where no setting would allow one: no hint.
	_, b := v.do("POST", "/tasks", `{"kind": "echo", "webhook_url": "file:///tmp/hook"}`)
	if msg := decode[errBody](t, b).Error.Message; strings.Contains(msg, "AllowLocalFiles") || !strings.Contains(msg, "use http or https") {
		t.Errorf("webhook_url file URL: message %q, want no AllowLocalFiles hint", msg)
	}
}
