package safehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

var (
	// ErrTooLarge is returned by Download when the body exceeds
	// Config.MaxBodySize.
	ErrTooLarge = errors.New("safehttp: response body too large")
	// ErrTooManyRedirects is returned when following a redirect would exceed
	// a positive Config.MaxRedirects.
	ErrTooManyRedirects = errors.New("safehttp: too many redirects")
	// ErrUnsupportedScheme is returned for a request, or a redirect, to a
	// URL whose scheme is neither http nor https.
	ErrUnsupportedScheme = errors.New("safehttp: unsupported URL scheme")
)

// StatusError is returned by Download for a response whose status is not
// 2xx. Callers decide from StatusCode whether a retry can help.
type StatusError struct {
	StatusCode int
	Status     string // for example "404 Not Found"
}

// Error returns a message such as "safehttp: unexpected HTTP status 404 Not Found".
func (e *StatusError) Error() string { return "safehttp: unexpected HTTP status " + e.Status }

// Config configures a Client. The zero value suits webhook delivery, given
// a shorter Timeout: public addresses only, no redirects followed.
//
// For every duration, zero selects the default and a negative value disables
// that timeout.
type Config struct {
	// AllowPrivate allows every address that is not public (loopback,
	// private, link-local, CGNAT, reserved...), for local development.
	// Unspecified, multicast and broadcast addresses stay refused. Defaults
	// to false.
	AllowPrivate bool
	// Allow lists prefixes allowed whatever the rest of the policy says, for
	// example 127.0.0.1/32 in tests, except that unspecified, multicast and
	// broadcast addresses stay refused. IPv4-mapped IPv6 addresses match
	// IPv4 prefixes. Defaults to none.
	Allow []netip.Prefix
	// Resolver resolves host names. Its answers are checked like any other
	// address, so it cannot weaken the policy. Defaults to
	// net.DefaultResolver.
	Resolver *net.Resolver

	// DialTimeout bounds name resolution plus the TCP connect. Defaults to
	// 10 seconds.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Defaults to 10 seconds.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers once the
	// request is written. Defaults to 30 seconds.
	ResponseHeaderTimeout time.Duration
	// Timeout bounds a whole exchange, redirects and reading the body
	// included. Defaults to 10 minutes.
	Timeout time.Duration

	// MaxRedirects is how many redirects are followed. At zero, a 3xx
	// response is returned as is, with no error, so that a webhook sender
	// can count it as a failed delivery. Following more than a positive
	// MaxRedirects fails with ErrTooManyRedirects. Defaults to 0; negative
	// values count as 0. DownloadConfig sets 5.
	MaxRedirects int
	// MaxBodySize is the largest body, in bytes, that Download accepts.
	// Defaults to 4 GiB, also used for negative values.
	MaxBodySize int64
	// UserAgent is sent with requests that set no User-Agent header.
	// Defaults to net/http's own.
	UserAgent string
	// MaxIdleConnsPerHost is how many idle connections to one host are
	// kept for reuse: a webhook sender making several attempts at once to
	// one endpoint needs as many, or it dials anew for most of them.
	// Defaults to net/http's 2.
	MaxIdleConnsPerHost int
}

// DownloadConfig returns the Config for fetching task inputs: defaults
// everywhere, except that up to 5 redirects are followed.
func DownloadConfig() Config { return Config{MaxRedirects: 5} }

// Client is an HTTP client enforcing a Config. It is safe for concurrent use.
type Client struct {
	hc      *http.Client
	maxBody int64
}

// NewClient returns a Client enforcing cfg.
func NewClient(cfg Config) *Client {
	cfg.Allow = append([]netip.Prefix(nil), cfg.Allow...) // the caller may reuse its slice
	d := &net.Dialer{
		Timeout:  duration(cfg.DialTimeout, 10*time.Second),
		Resolver: cfg.Resolver,
		// Control runs for each address tried, after resolution and just
		// before connect, so nothing is sent to a refused address.
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot parse dial address %q", ErrForbiddenAddress, address)
			}
			return CheckAddr(ap.Addr(), cfg)
		},
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would connect for us, unchecked
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true, // a custom DialContext turns HTTP/2 off otherwise
		TLSHandshakeTimeout:   duration(cfg.TLSHandshakeTimeout, 10*time.Second),
		ResponseHeaderTimeout: duration(cfg.ResponseHeaderTimeout, 30*time.Second),
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
	}
	maxRedirects := max(cfg.MaxRedirects, 0)
	maxBody := cfg.MaxBodySize
	if maxBody <= 0 {
		maxBody = 4 << 30
	}
	return &Client{
		hc: &http.Client{
			Transport: transport{tr, cfg.UserAgent},
			Timeout:   duration(cfg.Timeout, 10*time.Minute),
			CheckRedirect: func(_ *http.Request, via []*http.Request) error {
				if maxRedirects == 0 {
					return http.ErrUseLastResponse
				}
				if len(via) > maxRedirects {
					return fmt.Errorf("%w: stopped after %d", ErrTooManyRedirects, maxRedirects)
				}
				return nil // the transport checks the scheme and the dialer the address
			},
		},
		maxBody: maxBody,
	}
}

func duration(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0 // no timeout, in net and net/http
	}
	return d
}

// transport checks the scheme of every hop, since http.Client hands each
// redirect to the RoundTripper, and sets the default User-Agent.
type transport struct {
	*http.Transport // also provides CloseIdleConnections to http.Client
	userAgent       string
}

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if s := req.URL.Scheme; s != "http" && s != "https" {
		if req.Body != nil {
			req.Body.Close() // RoundTrip must close it, even on error
		}
		return nil, fmt.Errorf("%w %q", ErrUnsupportedScheme, s)
	}
	if t.userAgent != "" && req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context()) // a RoundTripper must not modify the request
		req.Header.Set("User-Agent", t.userAgent)
	}
	return t.Transport.RoundTrip(req)
}

// HTTPClient returns the underlying *http.Client, for code that needs one.
// It enforces everything in the Config except MaxBodySize.
func (c *Client) HTTPClient() *http.Client { return c.hc }

// Do sends req, as http.Client.Do does. The caller must close the
// response body, and should bound how much of it it reads.
func (c *Client) Do(req *http.Request) (*http.Response, error) { return c.hc.Do(req) }

// Sizer is a writer that Download tells how many bytes the body has, when
// the response says (Content-Length), before it writes them: a download's
// progress.
type Sizer interface {
	ExpectSize(n int64)
}

// Download GETs url and copies its body to w. It returns the number of bytes
// written and the response headers (when a response arrived). A w that is
// a Sizer learns the body's size first, when the response gives it.
//
// A status other than 2xx, including a redirect not followed, fails with a
// *StatusError without reading the body. A body larger than MaxBodySize fails with ErrTooLarge: up front when
// Content-Length announces it, otherwise after exactly MaxBodySize bytes
// were written to w.
func (c *Client) Download(ctx context.Context, url string, w io.Writer) (n int64, header http.Header, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("safehttp: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, resp.Header, &StatusError{StatusCode: resp.StatusCode, Status: resp.Status}
	}
	if resp.ContentLength > c.maxBody {
		return 0, resp.Header, fmt.Errorf("%w: Content-Length %d exceeds %d bytes", ErrTooLarge, resp.ContentLength, c.maxBody)
	}
	if s, ok := w.(Sizer); ok && resp.ContentLength >= 0 {
		s.ExpectSize(resp.ContentLength)
	}
	n, err = io.Copy(w, io.LimitReader(resp.Body, c.maxBody))
	if err != nil {
		return n, resp.Header, fmt.Errorf("safehttp: copying response body: %w", err)
	}
	if n == c.maxBody {
		// Probe for one more byte rather than copying limit+1, so that w
		// never receives more than the limit.
		switch _, err := io.ReadFull(resp.Body, make([]byte, 1)); err {
		case io.EOF: // exactly at the limit
		case nil:
			return n, resp.Header, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.maxBody)
		default:
			return n, resp.Header, fmt.Errorf("safehttp: copying response body: %w", err)
		}
	}
	return n, resp.Header, nil
}
