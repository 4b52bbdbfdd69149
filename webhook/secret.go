package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification. Go canonicalises
// them (Webhook-Id); receivers match them case-insensitively.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts the textual form of a Secret.
const SecretPrefix = "whsec_"

// Limits on a secret's key length, from the specification.
const (
	minKey = 24
	maxKey = 64
	newKey = 32 // NewSecret's length: 256 bits, as strong as HMAC-SHA256 gets.
)

// Secret is an HMAC-SHA256 key shared by a sender and its receivers. Its
// zero value is not a usable key: Sign, Verify and Send refuse it. However
// it is printed (%v, %+v, %#v, %s, %x, %d, …) it shows as "[redacted]"; only
// Encode reveals it.
type Secret struct {
	key []byte
}

// NewSecret returns a fresh random Secret of 32 bytes.
func NewSecret() (Secret, error) {
	key := make([]byte, newKey)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return Secret{}, fmt.Errorf("new secret: %w", err)
	}
	return Secret{key: key}, nil
}

// ParseSecret decodes a secret of the form "whsec_" followed by the
// standard base64 (padded or not) of a 24 to 64 byte key. The prefix is
// optional, as in the specification's reference libraries, so a bare
// base64 key is accepted too. Errors match ErrInvalidSecret and never
// contain the input.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimPrefix(s, SecretPrefix)
	key, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		// The decoder's error names an offset only, but leave it out anyway:
		// the secret is not the caller's to see again in a log.
		return Secret{}, fmt.Errorf("%w: not base64", ErrInvalidSecret)
	}
	if len(key) < minKey || len(key) > maxKey {
		return Secret{}, fmt.Errorf("%w: key is %d bytes, want %d to %d", ErrInvalidSecret, len(key), minKey, maxKey)
	}
	return Secret{key: key}, nil
}

// ParseSecrets parses each of ss with ParseSecret. An error names the
// position of the offending secret, not its text.
func ParseSecrets(ss []string) ([]Secret, error) {
	out := make([]Secret, len(ss))
	for i, s := range ss {
		sec, err := ParseSecret(s)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i, err)
		}
		out[i] = sec
	}
	return out, nil
}

// Encode returns the secret's textual form, "whsec_" and base64, for
// handing to a receiver. It is the only method that reveals the key.
func (s Secret) Encode() string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(s.key)
}

// String returns "[redacted]".
func (s Secret) String() string { return "[redacted]" }

// GoString returns "webhook.Secret{[redacted]}".
func (s Secret) GoString() string { return "webhook.Secret{[redacted]}" }

// Format prints "[redacted]" for every verb, so that no fmt verb (%d, %x
// on the struct) reaches the key bytes.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, s.GoString())
		return
	}
	io.WriteString(f, s.String())
}

// mac returns the raw HMAC of the signed content "id.timestamp.body".
func (s Secret) mac(id, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	io.WriteString(h, id)
	io.WriteString(h, ".")
	io.WriteString(h, timestamp)
	io.WriteString(h, ".")
	h.Write(body)
	return h.Sum(nil)
}

// checkSecrets refuses an empty list or a zero Secret, whose empty key
// anyone could sign with.
func checkSecrets(secrets []Secret) error {
	if len(secrets) == 0 {
		return ErrNoSecrets
	}
	for i, s := range secrets {
		if len(s.key) == 0 {
			return fmt.Errorf("%w: secret %d is the zero Secret", ErrInvalidSecret, i)
		}
	}
	return nil
}

// Sign returns the webhook-signature header value for a message: one
// "v1,<base64 HMAC-SHA256>" per secret, separated by spaces, so that
// receivers holding any one of the secrets can verify it while a secret is
// rotated. The timestamp is signed as whole Unix seconds, as sent in
// webhook-timestamp.
func Sign(id string, timestamp time.Time, body []byte, secrets ...Secret) (string, error) {
	if err := checkSecrets(secrets); err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	ts := strconv.FormatInt(timestamp.Unix(), 10)
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(s.mac(id, ts, body))
	}
	return strings.Join(sigs, " "), nil
}
