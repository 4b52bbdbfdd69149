package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cookieName is the session cookie's name.
const cookieName = "spool_session"

// session is a logged-in user, as the cookie tells.
type session struct {
	user    string
	expires int64 // unix seconds
	raw     string
}

type sessionKey struct{}

func withSession(ctx context.Context, s session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFrom(ctx context.Context) (session, bool) {
	s, ok := ctx.Value(sessionKey{}).(session)
	return s, ok
}

// sign returns the MAC of parts under the handler's key, which is random
// per handler: a restart logs everyone out, which is the price of
// keeping no secret on disk.
func (h *handler) sign(parts ...string) string {
	m := hmac.New(sha256.New, h.key)
	for _, p := range parts {
		m.Write([]byte(strconv.Itoa(len(p))))
		m.Write([]byte{':'})
		m.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession returns the cookie value of a session of user: the user's
// name, the expiry, a random nonce and their MAC. It never holds the
// token. The nonce makes each login its own session: without it, two
// logins of a token within a second got the same cookie, and logging out
// one (which revokes the cookie's value) ended the other too.
func (h *handler) newSession(user string, now time.Time) string {
	name := base64.RawURLEncoding.EncodeToString([]byte(user))
	exp := strconv.FormatInt(now.Add(h.ttl).Unix(), 10)
	nonce := rand.Text()
	return name + "." + exp + "." + nonce + "." + h.sign("session", name, exp, nonce)
}

// session returns the request's valid session. With AllowNoAuth every
// request has one.
func (h *handler) session(r *http.Request) (session, bool) {
	if h.noAuth {
		return session{user: "anonymous", raw: "anonymous"}, true
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	// A cookie of three parts, from before the nonce, is refused: its
	// user logs in again.
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 {
		return session{}, false
	}
	if !hmac.Equal([]byte(parts[3]), []byte(h.sign("session", parts[0], parts[1], parts[2]))) {
		return session{}, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || time.Now().Unix() >= exp {
		return session{}, false
	}
	user, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || h.revoked.has(c.Value) {
		return session{}, false
	}
	return session{user: string(user), expires: exp, raw: c.Value}, true
}

// revoked holds the sessions logged out before their expiry, each until
// it would have expired: clearing the cookie alone left a copy of it
// (another tab's device, a proxy log) valid for the rest of its TTL.
type revoked struct {
	mu       sync.Mutex
	sessions map[string]int64 // cookie value -> expiry, unix seconds
}

// maxRevoked bounds the sessions held: beyond it, logging out only
// clears the cookie, as before. Each needs a login with a valid token.
const maxRevoked = 100_000

func (rv *revoked) add(raw string, expires int64) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.sessions == nil {
		rv.sessions = map[string]int64{}
	}
	now := time.Now().Unix()
	for k, exp := range rv.sessions {
		if now >= exp {
			delete(rv.sessions, k)
		}
	}
	if len(rv.sessions) < maxRevoked {
		rv.sessions[raw] = expires
	}
}

func (rv *revoked) has(raw string) bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	_, ok := rv.sessions[raw]
	return ok
}

// csrfToken is the token the forms of s carry: a MAC of the session, so
// it needs no storage and dies with the session.
func (h *handler) csrfToken(s session) string { return h.sign("csrf", s.raw) }

// checkCSRF reports whether a POST carries s's CSRF token, in the form
// field "csrf" or the header X-CSRF-Token, or the error that kept the form
// from being read.
func (h *handler) checkCSRF(r *http.Request, s session) (bool, error) {
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		// The create form's upload is parsed here, to disk past 32 MB,
		// and its route finds the form parsed.
		limit := int64(1 << 20)
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
			limit += h.maxUpload
		}
		r.Body = http.MaxBytesReader(nil, r.Body, limit)
		var err error
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
			err = r.ParseMultipartForm(32 << 20)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			return false, err
		}
		tok = r.PostFormValue("csrf")
	}
	return tok != "" && hmac.Equal([]byte(tok), []byte(h.csrfToken(s))), nil
}

// loginPage is GET /login.
func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.session(r); ok {
		http.Redirect(w, r, h.next(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", map[string]any{"Title": "Log in", "Next": r.URL.Query().Get("next")})
}

// login is POST /login: a valid token sets the session cookie.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	next := r.PostFormValue("next")
	user, ok := h.tokens.Name(r.PostFormValue("token"))
	if !ok {
		h.render(w, r, http.StatusUnauthorized, "login", map[string]any{"Title": "Log in", "Next": next,
			"Error": "That token is not valid."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: h.newSession(user, time.Now()), Path: h.prefix + "/",
		MaxAge: int(h.ttl / time.Second), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, h.next(next), http.StatusSeeOther)
}

// logout is POST /logout: the session ends here, not only in this
// browser.
func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if s, ok := sessionFrom(r.Context()); ok && !h.noAuth {
		h.revoked.add(s.raw, s.expires)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: h.prefix + "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, h.prefix+"/login", http.StatusSeeOther)
}

// next returns where to go after logging in: a path under the prefix,
// never another site.
func (h *handler) next(p string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, h.prefix+"/") ||
		strings.HasPrefix(p, "//") || strings.Contains(p, `\`) {
		return h.prefix + "/"
	}
	return p
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
