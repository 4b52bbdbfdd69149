package webhook_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool/webhook"
)

// The specification's known-answer vector.
const (
	kaSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	kaID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	kaTime   = 1614265330
	kaBody   = `{"test": 2432232314}`
	kaSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSecret(t testing.TB, s string) webhook.Secret {
	t.Helper()
	sec, err := webhook.ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func newSecret(t testing.TB) webhook.Secret {
	t.Helper()
	sec, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func TestSignKnownAnswer(t *testing.T) {
	for _, s := range []string{kaSecret, strings.TrimPrefix(kaSecret, "whsec_")} {
		sig, err := webhook.Sign(kaID, time.Unix(kaTime, 0), []byte(kaBody), mustSecret(t, s))
		if err != nil {
			t.Fatal(err)
		}
		if sig != kaSig {
			t.Errorf("Sign with %q = %q, want %q", s, sig, kaSig)
		}
	}
}

func TestSignSeveralSecrets(t *testing.T) {
	other := newSecret(t)
	sig, err := webhook.Sign(kaID, time.Unix(kaTime, 0), []byte(kaBody), mustSecret(t, kaSecret), other)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(sig, " ")
	if len(parts) != 2 || parts[0] != kaSig || !strings.HasPrefix(parts[1], "v1,") || parts[1] == kaSig {
		t.Errorf("Sign with two secrets = %q", sig)
	}
}

func TestSignRefusesMissingSecrets(t *testing.T) {
	if _, err := webhook.Sign("id", time.Now(), nil); !errors.Is(err, webhook.ErrNoSecrets) {
		t.Errorf("no secrets: err = %v, want ErrNoSecrets", err)
	}
	if _, err := webhook.Sign("id", time.Now(), nil, webhook.Secret{}); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Errorf("zero Secret: err = %v, want ErrInvalidSecret", err)
	}
}

func TestParseSecret(t *testing.T) {
	key := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{kaSecret, true},
		{strings.TrimPrefix(kaSecret, "whsec_"), true},
		{"whsec_" + key(25), true}, // padded
		{"whsec_" + strings.TrimRight(key(25), "="), true},
		{"whsec_" + key(64), true},
		{"whsec_" + key(23), false},
		{"whsec_" + key(65), false},
		{"", false},
		{"whsec_", false},
		{"whsec_not*base64*at*all*not*base64*at*all", false},
		{"whsec_" + key(32) + " ", false},
	} {
		_, err := webhook.ParseSecret(tt.in)
		if tt.ok && err != nil {
			t.Errorf("ParseSecret(%q) = %v", tt.in, err)
		}
		if !tt.ok {
			if !errors.Is(err, webhook.ErrInvalidSecret) {
				t.Errorf("ParseSecret(%q) = %v, want ErrInvalidSecret", tt.in, err)
			} else if s := strings.TrimPrefix(tt.in, "whsec_"); len(s) > 3 && strings.Contains(err.Error(), s[:4]) {
				t.Errorf("ParseSecret(%q) error %q shows the secret", tt.in, err)
			}
		}
	}
	if _, err := webhook.ParseSecrets([]string{kaSecret, "whsec_bad"}); !errors.Is(err, webhook.ErrInvalidSecret) ||
		!strings.Contains(err.Error(), "secret 1") || strings.Contains(err.Error(), "bad") {
		t.Errorf("ParseSecrets error = %v, want ErrInvalidSecret naming secret 1 only", err)
	}
}

func TestNewSecret(t *testing.T) {
	a, b := newSecret(t), newSecret(t)
	if a.Encode() == b.Encode() {
		t.Fatal("two NewSecrets are equal")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a.Encode(), "whsec_"))
	if err != nil || len(key) != 32 || !strings.HasPrefix(a.Encode(), "whsec_") {
		t.Fatalf("Encode() = %q: %d bytes, %v", a.Encode(), len(key), err)
	}
	if mustSecret(t, a.Encode()).Encode() != a.Encode() {
		t.Error("ParseSecret(Encode()) does not round-trip")
	}
}

func TestSecretRedacted(t *testing.T) {
	sec := mustSecret(t, kaSecret)
	raw, _ := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(kaSecret, "whsec_"))
	snd := &webhook.Sender{Secrets: []webhook.Secret{sec}}
	opts := struct{ S webhook.Secret }{sec}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%T %v"} {
		for _, v := range []any{sec, &sec, []webhook.Secret{sec}, snd, *snd, opts, map[string]webhook.Secret{"k": sec}} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, "MfKQ9r8G") || strings.Contains(out, strings.Trim(fmt.Sprint(raw[:4]), "[]")) ||
				strings.Contains(out, fmt.Sprintf("%x", raw[:4])) || strings.Contains(out, string(raw[:4])) {
				t.Errorf("Sprintf(%q, %T) = %q shows the key", verb, v, out)
			}
		}
	}
	if sec.String() != "[redacted]" || !strings.Contains(sec.GoString(), "redacted") {
		t.Errorf("String() = %q, GoString() = %q", sec.String(), sec.GoString())
	}
}
