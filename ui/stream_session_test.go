package ui_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/spoolrun/spool/api"
	"github.com/spoolrun/spool/ui"
)

// TestLogoutEndsLiveStream: logging out ends the live streams the session
// opened, at the next heartbeat (found in review: a stream opened with a
// copy of the cookie went on sending every task's changes after logout,
// and past the session's expiry, for as long as it stayed connected).
func TestLogoutEndsLiveStream(t *testing.T) {
	v := newEnv(t, &ui.Options{Tokens: []api.Token{{Name: "tester", Secret: testToken}},
		Heartbeat: 20 * time.Millisecond})
	csrf := v.login()
	res := v.openEvents("", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("events: status %d", res.StatusCode)
	}
	if got, _ := v.post("/ui/logout", url.Values{"csrf": {csrf}}); got.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", got.StatusCode)
	}
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, res.Body)
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the live stream of a logged-out session still runs after 30s")
	}
}
