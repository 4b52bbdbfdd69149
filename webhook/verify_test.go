package webhook_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool/webhook"
)

var t0 = time.Unix(kaTime, 0)

// at returns options whose clock reads t0+d.
func at(d time.Duration) *webhook.VerifyOptions {
	return &webhook.VerifyOptions{Now: func() time.Time { return t0.Add(d) }}
}

// signed returns the headers a sender makes for body at t0.
func signed(t testing.TB, id string, body string, secrets ...webhook.Secret) http.Header {
	t.Helper()
	sig, err := webhook.Sign(id, t0, []byte(body), secrets...)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(t0.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestVerify(t *testing.T) {
	sec, wrong := mustSecret(t, kaSecret), newSecret(t)
	with := func(key, value string) func(http.Header) {
		return func(h http.Header) {
			if value == "" {
				h.Del(key)
			} else {
				h.Set(key, value)
			}
		}
	}
	for _, tt := range []struct {
		name    string
		change  func(http.Header)
		body    string
		opts    *webhook.VerifyOptions
		secrets []webhook.Secret
		want    error
	}{
		{name: "valid", opts: at(0)},
		{name: "known answer", change: with(webhook.HeaderSignature, kaSig), opts: at(time.Minute)},
		{name: "4m59s old", opts: at(5*time.Minute - time.Second)},
		{name: "5m old", opts: at(5 * time.Minute)},
		{name: "5m early", opts: at(-5 * time.Minute)},
		{name: "5m1s old", opts: at(5*time.Minute + time.Second), want: webhook.ErrTooOld},
		{name: "hours old", opts: at(3 * time.Hour), want: webhook.ErrTooOld},
		{name: "5m1s early", opts: at(-5*time.Minute - time.Second), want: webhook.ErrTooNew},
		{name: "tolerance option", opts: &webhook.VerifyOptions{Tolerance: time.Hour, Now: at(59 * time.Minute).Now}},
		{name: "tolerance option exceeded", opts: &webhook.VerifyOptions{Tolerance: time.Hour, Now: at(61 * time.Minute).Now}, want: webhook.ErrTooOld},
		{name: "changed body", body: `{"test": 2432232315}`, opts: at(0), want: webhook.ErrBadSignature},
		{name: "wrong secret", secrets: []webhook.Secret{wrong}, opts: at(0), want: webhook.ErrBadSignature},
		{name: "any receiver secret", secrets: []webhook.Secret{wrong, sec}, opts: at(0)},
		{name: "changed id", change: with(webhook.HeaderID, "msg_other"), opts: at(0), want: webhook.ErrBadSignature},
		{name: "changed timestamp", change: with(webhook.HeaderTimestamp, strconv.Itoa(kaTime+1)), opts: at(0), want: webhook.ErrBadSignature},
		{name: "no id", change: with(webhook.HeaderID, ""), opts: at(0), want: webhook.ErrMissingHeader},
		{name: "no timestamp", change: with(webhook.HeaderTimestamp, ""), opts: at(0), want: webhook.ErrMissingHeader},
		{name: "no signature", change: with(webhook.HeaderSignature, ""), opts: at(0), want: webhook.ErrMissingHeader},
		{name: "timestamp not a number", change: with(webhook.HeaderTimestamp, "2021-02-25T15:02:10Z"), opts: at(0), want: webhook.ErrMalformedHeader},
		{name: "timestamp overflows", change: with(webhook.HeaderTimestamp, "99999999999999999999"), opts: at(0), want: webhook.ErrMalformedHeader},
		{name: "one of several signatures", change: with(webhook.HeaderSignature, "v1,bm90IGl0 v1a,xyz "+kaSig+" v2,abc"), opts: at(0)},
		{name: "signatures on several lines", change: func(h http.Header) {
			h.Set(webhook.HeaderSignature, "v1,bm90IGl0")
			h.Add(webhook.HeaderSignature, kaSig)
		}, opts: at(0)},
		{name: "v2 only", change: with(webhook.HeaderSignature, "v2,"+strings.TrimPrefix(kaSig, "v1,")), opts: at(0), want: webhook.ErrBadSignature},
		{name: "no version", change: with(webhook.HeaderSignature, strings.TrimPrefix(kaSig, "v1,")), opts: at(0), want: webhook.ErrBadSignature},
		{name: "not base64", change: with(webhook.HeaderSignature, "v1,!!!"), opts: at(0), want: webhook.ErrBadSignature},
		{name: "truncated", change: with(webhook.HeaderSignature, kaSig[:20]), opts: at(0), want: webhook.ErrBadSignature},
		{name: "empty v1", change: with(webhook.HeaderSignature, "v1,"), opts: at(0), want: webhook.ErrBadSignature},
		{name: "no secrets", secrets: []webhook.Secret{}, opts: at(0), want: webhook.ErrNoSecrets},
		{name: "zero secret", secrets: []webhook.Secret{{}}, opts: at(0), want: webhook.ErrInvalidSecret},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := signed(t, kaID, kaBody, sec)
			if tt.change != nil {
				tt.change(h)
			}
			body := kaBody
			if tt.body != "" {
				body = tt.body
			}
			secrets := []webhook.Secret{sec}
			if tt.secrets != nil {
				secrets = tt.secrets
			}
			err := webhook.Verify(h, []byte(body), tt.opts, secrets...)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyNilOptionsUsesNow(t *testing.T) {
	sec := newSecret(t)
	now := time.Now()
	sig, _ := webhook.Sign("msg_1", now, nil, sec)
	h := http.Header{}
	h.Set(webhook.HeaderID, "msg_1")
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	if err := webhook.Verify(h, nil, nil, sec); err != nil {
		t.Fatal(err)
	}
	if err := webhook.Verify(signed(t, "msg_1", "", sec), nil, nil, sec); !errors.Is(err, webhook.ErrTooOld) {
		t.Fatalf("a 2021 timestamp with nil options: %v, want ErrTooOld", err)
	}
}

// TestRotation: while a secret is rotated the sender signs with the old
// and the new one, and receivers holding either accept.
func TestRotation(t *testing.T) {
	a, b := newSecret(t), newSecret(t)
	h := signed(t, "msg_rot", kaBody, a, b)
	for name, receiver := range map[string]webhook.Secret{"old (A)": a, "new (B)": b} {
		if err := webhook.Verify(h, []byte(kaBody), at(0), receiver); err != nil {
			t.Errorf("receiver with %s: %v", name, err)
		}
	}
	if err := webhook.Verify(h, []byte(kaBody), at(0), newSecret(t)); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("receiver with neither: %v", err)
	}
}

func TestMiddleware(t *testing.T) {
	sec := mustSecret(t, kaSecret)
	var got, fromCtx string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		c, _ := webhook.BodyFromContext(r.Context())
		got, fromCtx = string(b), string(c)
		w.WriteHeader(http.StatusNoContent)
	})
	opts := &webhook.VerifyOptions{Now: func() time.Time { return t0 }, MaxBody: 64}
	srv := httptest.NewServer(webhook.Middleware(next, opts, sec))
	t.Cleanup(srv.Close)

	post := func(h http.Header, body string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusNoContent && strings.TrimSpace(string(text)) != http.StatusText(resp.StatusCode) {
			t.Errorf("refusal body %q says more than the status text", text)
		}
		return resp.StatusCode
	}

	if code := post(signed(t, kaID, kaBody, sec), kaBody); code != http.StatusNoContent || got != kaBody || fromCtx != kaBody {
		t.Errorf("valid: %d, next got body %q, context %q", code, got, fromCtx)
	}
	got = ""
	noID := signed(t, kaID, kaBody, sec)
	noID.Del(webhook.HeaderID)
	badTS := signed(t, kaID, kaBody, sec)
	badTS.Set(webhook.HeaderTimestamp, "soon")
	big := strings.Repeat("x", 65)
	for _, tt := range []struct {
		name string
		h    http.Header
		body string
		want int
	}{
		{"changed body", signed(t, kaID, kaBody, sec), `{"test": 1}`, http.StatusUnauthorized},
		{"wrong secret", signed(t, kaID, kaBody, newSecret(t)), kaBody, http.StatusUnauthorized},
		{"missing header", noID, kaBody, http.StatusBadRequest},
		{"malformed timestamp", badTS, kaBody, http.StatusBadRequest},
		{"too large", signed(t, kaID, big, sec), big, http.StatusRequestEntityTooLarge},
	} {
		if code := post(tt.h, tt.body); code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, code, tt.want)
		}
	}
	if got != "" {
		t.Errorf("next was called for a refused request, with %q", got)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(kaID, strconv.Itoa(kaTime), kaSig, kaBody)
	f.Add(kaID, strconv.Itoa(kaTime), "v1,"+kaSig+" v1a,x v2,", kaBody)
	f.Add("", "-9223372036854775808", "v1,", "")
	f.Add("id", "9223372036854775807", "v1,==== v1, ,v1", "x")
	f.Add("id", "+1614265330", " \t"+kaSig, kaBody)
	sec := mustSecret(f, kaSecret)
	sentinels := []error{webhook.ErrMissingHeader, webhook.ErrMalformedHeader,
		webhook.ErrBadSignature, webhook.ErrTooOld, webhook.ErrTooNew}
	f.Fuzz(func(t *testing.T, id, ts, sig, body string) {
		h := http.Header{}
		h.Set(webhook.HeaderID, id)
		h.Set(webhook.HeaderTimestamp, ts)
		h.Set(webhook.HeaderSignature, sig)
		err := webhook.Verify(h, []byte(body), at(0), sec)
		if err == nil {
			// Only the real signature of exactly this content may pass.
			want, _ := webhook.Sign(id, t0, []byte(body), sec)
			if !strings.Contains(sig, want) {
				t.Fatalf("accepted a forged signature %q for %q %q %q", sig, id, ts, body)
			}
			return
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("Verify error %v matches no sentinel", err)
	})
}
