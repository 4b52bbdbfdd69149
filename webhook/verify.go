package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a message's timestamp may lie from the
// receiver's clock, either way, unless VerifyOptions says otherwise.
const DefaultTolerance = 5 * time.Minute

// DefaultMaxBody is the largest body Middleware reads unless VerifyOptions
// says otherwise: 1 MiB.
const DefaultMaxBody = 1 << 20

// VerifyOptions tunes Verify and Middleware. A nil *VerifyOptions means all
// defaults.
type VerifyOptions struct {
	// Tolerance is how far the webhook-timestamp may lie in the past or the
	// future. Defaults to DefaultTolerance (5 minutes).
	Tolerance time.Duration
	// Now is the receiver's clock. Defaults to time.Now.
	Now func() time.Time
	// MaxBody is the largest body Middleware accepts; a larger one gets 413.
	// Verify itself takes the body it is given. Defaults to DefaultMaxBody.
	MaxBody int64
}

func (o *VerifyOptions) tolerance() time.Duration {
	if o == nil || o.Tolerance <= 0 {
		return DefaultTolerance
	}
	return o.Tolerance
}

func (o *VerifyOptions) now() time.Time {
	if o == nil || o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

func (o *VerifyOptions) maxBody() int64 {
	if o == nil || o.MaxBody <= 0 {
		return DefaultMaxBody
	}
	return o.MaxBody
}

// Verify checks that a received message was signed by one of secrets and
// is fresh. It returns nil if any "v1," signature in the webhook-signature
// header matches under any of the secrets (signatures of other versions
// are ignored) and the webhook-timestamp is within the tolerance of now.
// Otherwise its error matches ErrMissingHeader, ErrMalformedHeader,
// ErrBadSignature, ErrTooOld or ErrTooNew (or ErrNoSecrets and
// ErrInvalidSecret for a misconfigured receiver). The signature is checked
// first, so ErrTooOld and ErrTooNew describe authentic messages. opts may
// be nil.
func Verify(h http.Header, body []byte, opts *VerifyOptions, secrets ...Secret) error {
	if err := checkSecrets(secrets); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	// A proxy may split the signatures over several header lines.
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), strings.Join(h.Values(HeaderSignature), " ")
	for _, kv := range [][2]string{{HeaderID, id}, {HeaderTimestamp, ts}, {HeaderSignature, sigs}} {
		if kv[1] == "" {
			return fmt.Errorf("%w: %s", ErrMissingHeader, kv[0])
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not Unix seconds", ErrMalformedHeader, HeaderTimestamp)
	}
	if !matches(secrets, id, ts, body, sigs) {
		return ErrBadSignature
	}
	// Compared in whole seconds, on the side that cannot overflow: the
	// header may hold any int64.
	now, tol := opts.now().Unix(), int64(opts.tolerance()/time.Second)
	switch {
	case sec < now-tol:
		return ErrTooOld
	case sec > now+tol:
		return ErrTooNew
	}
	return nil
}

// matches reports whether any v1 signature in sigs is the MAC of the
// message under any secret, comparing in constant time.
func matches(secrets []Secret, id, ts string, body []byte, sigs string) bool {
	want := make([][]byte, len(secrets))
	for i, s := range secrets {
		want[i] = s.mac(id, ts, body)
	}
	for _, sig := range strings.Fields(sigs) {
		b64, ok := strings.CutPrefix(sig, "v1,")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		for _, w := range want {
			if hmac.Equal(got, w) {
				return true
			}
		}
	}
	return false
}

type bodyKey struct{}

// BodyFromContext returns the verified body that Middleware stored in the
// request's context, and whether there was one.
func BodyFromContext(ctx context.Context) ([]byte, bool) {
	b, ok := ctx.Value(bodyKey{}).([]byte)
	return b, ok
}

// Middleware returns a handler that reads the request body (at most
// opts.MaxBody bytes, else 413), verifies it with Verify and, if it is
// authentic and fresh, calls next with r.Body replaced by the verified
// bytes, which BodyFromContext also returns. It answers a missing or
// malformed header with 400, any other verification failure with 401 and
// a receiver without secrets with 500, each with the status text only, so
// that a prober learns nothing more. opts may be nil.
func Middleware(next http.Handler, opts *VerifyOptions, secrets ...Secret) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, opts.maxBody()))
		if err != nil {
			code := http.StatusBadRequest
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				code = http.StatusRequestEntityTooLarge
			}
			http.Error(w, http.StatusText(code), code)
			return
		}
		if err := Verify(r.Header, body, opts, secrets...); err != nil {
			code := http.StatusUnauthorized
			switch {
			case errors.Is(err, ErrMissingHeader), errors.Is(err, ErrMalformedHeader):
				code = http.StatusBadRequest
			case errors.Is(err, ErrNoSecrets), errors.Is(err, ErrInvalidSecret):
				code = http.StatusInternalServerError
			}
			http.Error(w, http.StatusText(code), code)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, body))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}
