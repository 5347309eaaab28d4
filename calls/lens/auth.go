package lens

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// CookieName returns the name of the login cookie for a request to host:
// "membrane_lens_" and the port, so that two servers on one machine (whose
// cookies a browser does not keep apart by port) do not log each other out.
// Whatever its name, a cookie only ever means something to the Lens that
// issued it.
func CookieName(host string) string {
	_, port, err := net.SplitHostPort(host)
	if err != nil || port == "" {
		return "membrane_lens"
	}
	return "membrane_lens_" + port
}

// login is one browser logged in.
type login struct {
	user    string
	expires time.Time
}

// logins holds the logged-in browsers by the digest of their cookie's
// value, bounded in number.
type logins struct {
	mu    sync.Mutex
	m     map[[32]byte]login
	order [][32]byte // oldest first, for eviction
	max   int
	ttl   time.Duration
}

func newLogins(max int, ttl time.Duration) *logins {
	return &logins{m: map[[32]byte]login{}, max: max, ttl: ttl}
}

// add makes a new login for user and returns the cookie value.
func (ls *logins) add(user string, now time.Time) string {
	v := rand.Text() + rand.Text()
	key := sha256.Sum256([]byte(v))
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for len(ls.m) >= ls.max && len(ls.order) > 0 {
		delete(ls.m, ls.order[0])
		ls.order = ls.order[1:]
	}
	ls.m[key] = login{user: user, expires: now.Add(ls.ttl)}
	ls.order = append(ls.order, key)
	return v
}

// get returns the user of a cookie value.
func (ls *logins) get(v string, now time.Time) (string, bool) {
	if v == "" || len(v) > 128 {
		return "", false
	}
	key := sha256.Sum256([]byte(v))
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok := ls.m[key]
	if !ok {
		return "", false
	}
	if now.After(l.expires) {
		ls.drop(key)
		return "", false
	}
	return l.user, true
}

func (ls *logins) remove(v string) {
	key := sha256.Sum256([]byte(v))
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.drop(key)
}

func (ls *logins) drop(key [32]byte) {
	delete(ls.m, key)
	for i, k := range ls.order {
		if k == key {
			ls.order = append(ls.order[:i], ls.order[i+1:]...)
			break
		}
	}
}

// maxLoginBody bounds a login request's body.
const maxLoginBody = 4 << 10

// user returns who is asking: the login cookie's user, or the bearer
// token's; ok is false for neither.
func (l *Lens) user(r *http.Request) (string, bool) {
	if l.o.Open {
		return "", true
	}
	if c, err := r.Cookie(CookieName(r.Host)); err == nil {
		if u, ok := l.logins.get(c.Value, time.Now()); ok {
			return u, true
		}
	}
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") && l.o.Verify != nil {
		return l.o.Verify(strings.TrimSpace(tok))
	}
	return "", false
}

// serveLogin exchanges a token (the form field or JSON key "token") for a
// login cookie.
func (l *Lens) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "POST the token")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "the login request is too large")
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, `send {"token": "..."}`)
			return
		}
	} else {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			writeError(w, http.StatusBadRequest, "send the form field token")
			return
		}
		req.Token = strings.TrimSpace(vals.Get("token"))
	}
	now := time.Now()
	if !l.fails.allow(now) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "too many failed logins; try again in a second")
		return
	}
	user, ok := "", l.o.Open
	if !ok && l.o.Verify != nil && req.Token != "" {
		user, ok = l.o.Verify(req.Token)
	}
	if !ok {
		l.fails.add(now)
		l.log.Warn("lens login refused", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "that is not the server's token")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName(r.Host),
		Value:    l.logins.add(user, now),
		Path:     l.o.Prefix,
		MaxAge:   int(l.o.LoginTTL.Seconds()),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	writeJSON(w, http.StatusOK, map[string]string{"user": user})
}

// serveLogout ends the login of the cookie sent.
func (l *Lens) serveLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "POST to log out")
		return
	}
	name := CookieName(r.Host)
	if c, err := r.Cookie(name); err == nil {
		l.logins.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: l.o.Prefix, MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// maxFailures bounds the failed logins of one second, of all clients: past
// it a login gets 429 until the next second, so that guessing the token is
// slow whatever the token's strength.
const maxFailures = 10

// failures counts the failed logins of the current second.
type failures struct {
	mu  sync.Mutex
	sec int64
	n   int
}

func (f *failures) allow(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return now.Unix() != f.sec || f.n < maxFailures
}

func (f *failures) add(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := now.Unix(); s != f.sec {
		f.sec, f.n = s, 0
	}
	f.n++
}
