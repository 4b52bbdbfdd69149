package webhook

import "errors"

// Sentinel errors. Match them with errors.Is; they are wrapped with the
// offending header's name or the failing step, never with a secret.
var (
	// ErrMissingHeader is returned by Verify when webhook-id,
	// webhook-timestamp or webhook-signature is absent or empty.
	ErrMissingHeader = errors.New("webhook: missing header")
	// ErrMalformedHeader is returned by Verify when webhook-timestamp is not
	// a decimal number of Unix seconds.
	ErrMalformedHeader = errors.New("webhook: malformed header")
	// ErrBadSignature is returned by Verify when no v1 signature in the
	// header matches the message under any of the secrets.
	ErrBadSignature = errors.New("webhook: bad signature")
	// ErrTooOld is returned by Verify for an authentic message whose
	// timestamp lies further in the past than the tolerance, such as a
	// replayed one.
	ErrTooOld = errors.New("webhook: timestamp too old")
	// ErrTooNew is returned by Verify for an authentic message whose
	// timestamp lies further in the future than the tolerance.
	ErrTooNew = errors.New("webhook: timestamp too new")
	// ErrInvalidSecret is returned for a secret that is not base64 of 24 to
	// 64 bytes, and by Sign, Verify and Sender.Send for a zero Secret.
	ErrInvalidSecret = errors.New("webhook: invalid secret")
	// ErrNoSecrets is returned by Sign, Verify and Sender.Send when given no
	// secret at all.
	ErrNoSecrets = errors.New("webhook: no secrets")
)
