// Package safehttp provides an HTTP client that is safe to point at
// user-supplied URLs: task inputs to download, webhook endpoints and the
// targets of http tasks.
//
// The main defence is against server-side request forgery. Every address is
// checked after name resolution, in the dialer's Control hook, immediately
// before the socket connects. A host name that resolves to an internal
// address, a DNS answer that changes between lookups (rebinding), a redirect
// to an internal host and an IPv6 address that embeds an internal IPv4 one
// are therefore all refused the same way, with an error matching
// ErrForbiddenAddress. CheckAddr is the policy itself.
//
// The client also ignores proxy settings from the environment (a proxy would
// connect on our behalf, unchecked), bounds every phase of an exchange with a
// timeout, follows only as many redirects as its Config allows and, in
// Download, refuses bodies larger than a limit instead of truncating them.
package safehttp
