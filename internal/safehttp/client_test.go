package safehttp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolrun/spool/internal/safehttp"
)

var loopback1 = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// newClient returns a client with short timeouts, so that a bug fails the
// test instead of hanging it.
func newClient(cfg safehttp.Config) *safehttp.Client {
	cfg.DialTimeout = orDefault(cfg.DialTimeout, 2*time.Second)
	cfg.Timeout = orDefault(cfg.Timeout, 10*time.Second)
	return safehttp.NewClient(cfg)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// serve starts h on addr, such as "127.0.0.1:0", and counts its requests.
// It skips the test when addr cannot be listened on.
func serve(t *testing.T, addr string, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &hits
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, "hello from ", r.UserAgent())
})

// fakeResolver answers every DNS query with the matching addrs, over an
// in-memory connection, so tests can give any name any address.
func fakeResolver(addrs ...string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			client, server := net.Pipe()
			go serveDNS(server, addrs)
			return client, nil
		},
	}
}

// serveDNS answers one query in DNS-over-TCP framing, which the Go resolver
// uses because a net.Pipe is not a net.PacketConn.
func serveDNS(c net.Conn, addrs []string) {
	defer c.Close()
	var size [2]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return
	}
	q := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
		return
	}
	i := 12 // the question's name: labels up to an empty one
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return
	}
	typeClass := q[i+1 : i+5]
	var rdata [][]byte
	for _, s := range addrs {
		a := netip.MustParseAddr(s)
		if qtype := binary.BigEndian.Uint16(typeClass); qtype == 1 && a.Is4() || qtype == 28 && a.Is6() {
			rdata = append(rdata, a.AsSlice())
		}
	}
	resp := append([]byte(nil), q[:2]...)                                  // ID
	resp = append(resp, 0x81, 0x80, 0, 1, 0, byte(len(rdata)), 0, 0, 0, 0) // response, recursion available
	resp = append(resp, q[12:i+5]...)                                      // the question
	for _, d := range rdata {
		resp = append(resp, 0xc0, 12) // the question's name
		resp = append(resp, typeClass...)
		resp = append(resp, 0, 0, 0, 60, 0, byte(len(d)))
		resp = append(resp, d...)
	}
	c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...))
}

func get(t *testing.T, c *safehttp.Client, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

func TestRefusesForbiddenDestinations(t *testing.T) {
	srv4, hits4 := serve(t, "127.0.0.1:0", hello)
	port := srv4.URL[strings.LastIndex(srv4.URL, ":")+1:]
	tests := []struct {
		name     string
		url      func(t *testing.T) (string, *atomic.Int32)
		resolver *net.Resolver
	}{
		{"IPv4 loopback", func(*testing.T) (string, *atomic.Int32) { return srv4.URL, hits4 }, nil},
		{"IPv6 loopback", func(t *testing.T) (string, *atomic.Int32) {
			srv6, hits6 := serve(t, "[::1]:0", hello)
			return srv6.URL, hits6
		}, nil},
		{"IPv4-mapped loopback", func(*testing.T) (string, *atomic.Int32) {
			return "http://[::ffff:127.0.0.1]:" + port + "/", hits4
		}, nil},
		{"localhost", func(*testing.T) (string, *atomic.Int32) { return "http://localhost:" + port + "/", hits4 }, nil},
		{"name resolving to loopback", func(*testing.T) (string, *atomic.Int32) {
			return "http://internal.test:" + port + "/", hits4
		}, fakeResolver("127.0.0.1")},
		{"name resolving to private and metadata", func(*testing.T) (string, *atomic.Int32) {
			return "http://internal.test/", nil
		}, fakeResolver("10.0.0.1", "169.254.169.254", "fd00::1")},
		{"private", func(*testing.T) (string, *atomic.Int32) { return "http://10.0.0.1/", nil }, nil},
		{"metadata", func(*testing.T) (string, *atomic.Int32) {
			return "http://169.254.169.254/latest/meta-data/", nil
		}, nil},
		{"unspecified", func(*testing.T) (string, *atomic.Int32) { return "http://0.0.0.0:" + port + "/", hits4 }, nil},
		{"NAT64 loopback", func(*testing.T) (string, *atomic.Int32) { return "http://[64:ff9b::7f00:1]/", nil }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, hits := tt.url(t)
			c := newClient(safehttp.Config{Resolver: tt.resolver})
			before := int32(0)
			if hits != nil {
				before = hits.Load()
			}
			_, err := get(t, c, url)
			if !errors.Is(err, safehttp.ErrForbiddenAddress) {
				t.Fatalf("GET %s: err = %v, want ErrForbiddenAddress", url, err)
			}
			if !strings.Contains(err.Error(), "refusing to connect to ") {
				t.Errorf("error %q does not say what was refused", err)
			}
			if hits != nil && hits.Load() != before {
				t.Error("the server received the request")
			}
			// The same download fails the same way.
			var buf bytes.Buffer
			if _, _, err := c.Download(t.Context(), url, &buf); !errors.Is(err, safehttp.ErrForbiddenAddress) || buf.Len() != 0 {
				t.Errorf("Download: err = %v, %d bytes; want ErrForbiddenAddress, 0 bytes", err, buf.Len())
			}
		})
	}
}

func TestAllowedDestinations(t *testing.T) {
	srv, _ := serve(t, "127.0.0.1:0", hello)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	tests := []struct {
		name string
		cfg  safehttp.Config
		url  string
	}{
		{"Allow", safehttp.Config{Allow: loopback1}, srv.URL},
		{"AllowPrivate", safehttp.Config{AllowPrivate: true}, srv.URL},
		{"AllowPrivate via a name", safehttp.Config{AllowPrivate: true, Resolver: fakeResolver("127.0.0.1")}, "http://internal.test:" + port},
		// Every resolved address is checked on its own: the refused one is
		// skipped and the next one is dialled.
		{"refused address then allowed one", safehttp.Config{Allow: loopback1, Resolver: fakeResolver("127.0.0.2", "127.0.0.1")}, "http://internal.test:" + port},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.UserAgent = "spool-test"
			var buf bytes.Buffer
			n, h, err := newClient(tt.cfg).Download(t.Context(), tt.url, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if want := "hello from spool-test"; buf.String() != want || n != int64(len(want)) {
				t.Errorf("body %q (n=%d), want %q", buf.String(), n, want)
			}
			if ct := h.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestRedirectToForbiddenAddress(t *testing.T) {
	b, bHits := serve(t, "127.0.0.2:0", hello) // Linux routes all of 127/8 to lo
	a, _ := serve(t, "127.0.0.1:0", http.RedirectHandler(b.URL+"/secret", http.StatusFound))

	c := newClient(safehttp.Config{Allow: loopback1, MaxRedirects: 5})
	_, err := get(t, c, a.URL)
	if !errors.Is(err, safehttp.ErrForbiddenAddress) || !strings.Contains(err.Error(), "127.0.0.2: loopback address") {
		t.Fatalf("err = %v, want ErrForbiddenAddress for 127.0.0.2", err)
	}
	if n := bHits.Load(); n != 0 {
		t.Fatalf("B received %d requests", n)
	}

	// B is reachable when allowed, so the refusal above was the policy's.
	c = newClient(safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, MaxRedirects: 5})
	if _, err := get(t, c, a.URL); err != nil || bHits.Load() != 1 {
		t.Fatalf("with 127.0.0.0/8 allowed: err = %v, B hits = %d", err, bHits.Load())
	}
}

func TestUnsupportedScheme(t *testing.T) {
	srv, _ := serve(t, "127.0.0.1:0", http.RedirectHandler("file:///etc/passwd", http.StatusFound))
	c := newClient(safehttp.Config{Allow: loopback1, MaxRedirects: 5})
	for _, url := range []string{srv.URL, "ftp://127.0.0.1/", "file:///etc/passwd"} {
		if _, err := get(t, c, url); !errors.Is(err, safehttp.ErrUnsupportedScheme) {
			t.Errorf("GET %s: err = %v, want ErrUnsupportedScheme", url, err)
		}
	}
}

func TestRedirectLimit(t *testing.T) {
	// /hop/N redirects to /hop/N-1; /hop/0 answers.
	var done atomic.Int32
	srv, _ := serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
		if n > 0 {
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
			return
		}
		done.Add(1)
		fmt.Fprint(w, "done")
	}))
	download := safehttp.DownloadConfig()
	download.Allow = loopback1
	tests := []struct {
		name         string
		maxRedirects int
		hops         int
		wantErr      error
		wantStatus   int
	}{
		{"download, 5 redirects", download.MaxRedirects, 5, nil, http.StatusOK},
		{"download, 6 redirects", download.MaxRedirects, 6, safehttp.ErrTooManyRedirects, 0},
		{"limit 2, 2 redirects", 2, 2, nil, http.StatusOK},
		{"limit 2, 3 redirects", 2, 3, safehttp.ErrTooManyRedirects, 0},
		{"no redirects, direct", 0, 0, nil, http.StatusOK},
		{"no redirects, 1 redirect", 0, 1, nil, http.StatusFound},
		{"negative counts as 0", -1, 1, nil, http.StatusFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := download
			cfg.MaxRedirects = tt.maxRedirects
			before := done.Load()
			resp, err := get(t, newClient(cfg), fmt.Sprintf("%s/hop/%d", srv.URL, tt.hops))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil || resp.StatusCode != tt.wantStatus {
				t.Fatalf("err = %v, resp = %v; want status %d", err, resp, tt.wantStatus)
			}
			if reached := done.Load() > before; reached != (tt.wantStatus == http.StatusOK) {
				t.Errorf("final hop reached: %v", reached)
			}
		})
	}

	// Download reports an unfollowed redirect as a status error.
	_, _, err := newClient(safehttp.Config{Allow: loopback1}).Download(t.Context(), srv.URL+"/hop/1", io.Discard)
	var se *safehttp.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusFound {
		t.Fatalf("Download of a redirect with MaxRedirects 0: err = %v, want a *StatusError 302", err)
	}
}

func TestDownloadSizeLimit(t *testing.T) {
	const limit = 1000
	tests := []struct {
		name          string
		size          int
		contentLength bool
		wantErr       error
		wantN         int64 // bytes written to w
	}{
		{"at limit, with Content-Length", limit, true, nil, limit},
		{"at limit, chunked", limit, false, nil, limit},
		{"empty", 0, true, nil, 0},
		{"over limit, with Content-Length", limit + 1, true, safehttp.ErrTooLarge, 0},
		{"far over limit, with Content-Length", 1 << 20, true, safehttp.ErrTooLarge, 0},
		{"over limit, chunked", limit + 1, false, safehttp.ErrTooLarge, limit},
		{"far over limit, chunked", 1 << 20, false, safehttp.ErrTooLarge, limit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("x"), tt.size)
			srv, _ := serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.contentLength {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				} else {
					w.(http.Flusher).Flush() // headers out first: no Content-Length
				}
				w.Write(body)
			}))
			var buf bytes.Buffer
			c := newClient(safehttp.Config{Allow: loopback1, MaxBodySize: limit})
			n, _, err := c.Download(t.Context(), srv.URL, &buf)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n != tt.wantN || int64(buf.Len()) != tt.wantN {
				t.Errorf("n = %d, wrote %d bytes; want %d", n, buf.Len(), tt.wantN)
			}
		})
	}
}

func TestDownloadStatus(t *testing.T) {
	srv, _ := serve(t, "127.0.0.1:0", http.NotFoundHandler())
	var buf bytes.Buffer
	n, h, err := newClient(safehttp.Config{Allow: loopback1}).Download(t.Context(), srv.URL, &buf)
	var se *safehttp.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || se.Status != "404 Not Found" {
		t.Fatalf("err = %v, want a *StatusError 404", err)
	}
	if n != 0 || buf.Len() != 0 || h == nil {
		t.Errorf("n = %d, %d bytes written, header %v", n, buf.Len(), h)
	}
}

func TestTimeouts(t *testing.T) {
	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}

	t.Run("response headers", func(t *testing.T) {
		release := make(chan struct{})
		srv, _ := serve(t, "127.0.0.1:0", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
		t.Cleanup(func() { close(release) }) // before srv.Close, which waits for handlers
		c := newClient(safehttp.Config{Allow: loopback1, ResponseHeaderTimeout: 200 * time.Millisecond})
		if _, err := get(t, c, srv.URL); !isTimeout(err) {
			t.Fatalf("err = %v, want a timeout", err)
		}
	})

	t.Run("whole transfer", func(t *testing.T) {
		release := make(chan struct{})
		srv, _ := serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			<-release
		}))
		t.Cleanup(func() { close(release) })
		c := newClient(safehttp.Config{Allow: loopback1, Timeout: 300 * time.Millisecond})
		var buf bytes.Buffer
		if _, _, err := c.Download(t.Context(), srv.URL, &buf); !isTimeout(err) {
			t.Fatalf("err = %v, want a timeout", err)
		}
	})

	t.Run("TLS handshake", func(t *testing.T) {
		// A listener that accepts connections and never speaks.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				conns = append(conns, c)
			}
		}()
		c := newClient(safehttp.Config{Allow: loopback1, TLSHandshakeTimeout: 200 * time.Millisecond})
		if _, err := get(t, c, "https://"+l.Addr().String()+"/"); !isTimeout(err) {
			t.Fatalf("err = %v, want a timeout", err)
		}
	})
}

func TestIgnoresProxyEnvironment(t *testing.T) {
	// A "proxy" that counts connections. The target is a name, not an IP,
	// since net/http never proxies requests to loopback addresses anyway.
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	var proxied atomic.Int32
	go func() {
		for {
			c, err := proxy.Accept()
			if err != nil {
				return
			}
			proxied.Add(1)
			c.Close()
		}
	}()
	proxyURL := "http://" + proxy.Addr().String()
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"} {
		t.Setenv(v, proxyURL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	srv, _ := serve(t, "127.0.0.1:0", hello)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	c := newClient(safehttp.Config{Allow: loopback1, Resolver: fakeResolver("127.0.0.1")})
	resp, err := get(t, c, "http://target.test:"+port+"/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("err = %v, resp = %v", err, resp)
	}
	if n := proxied.Load(); n != 0 {
		t.Fatalf("the proxy received %d connections", n)
	}
}
