package ollama

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"unicode"
)

// TestParseHostUserinfo keeps a user:password@ for basic auth and never
// shows the password in an error.
func TestParseHostUserinfo(t *testing.T) {
	t.Setenv("OLLAMA_HOST", "")
	u, err := ParseHost("http://alice:s3cr%3At%40pw@ollama.internal:8080/base")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := u.User.Password(); u.User.Username() != "alice" || p != "s3cr:t@pw" || u.Host != "ollama.internal:8080" || u.Path != "/base" {
		t.Errorf("ParseHost = %#v (password %q)", u, p)
	}
	if got := u.Redacted(); strings.Contains(got, "s3cr") {
		t.Errorf("Redacted() = %s", got)
	}
	// Without a scheme too.
	if u, err := ParseHost("bob:hunter2@10.0.0.5"); err != nil || u.User.Username() != "bob" || u.Host != "10.0.0.5:11434" {
		t.Errorf("ParseHost without a scheme = %v, %v", u, err)
	}
	for _, bad := range []string{
		"http://alice:hunter2@h:99999", "ftp://alice:hunter2@h", "http://alice:hunter2@a b:1",
		"alice:hunter2@h:abc", "http://:hunter2@h",
	} {
		_, err := ParseHost(bad)
		if err == nil {
			t.Errorf("ParseHost(%q) accepted it", bad)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseHost(%q) error shows the password: %v", bad, err)
		}
	}
}

// errWords is the fixed text of ParseHost's errors: a "password" made of
// it would be found there.
const errWords = "xxxxx ollama host the user:password@ part is not valid (percent-encode special characters in it) " +
	"scheme must be http or https port is not a number from 1 to 65535 is not a host name 127.0.0.1 11434"

// FuzzRedactURL checks that whatever surrounds it, a password given as
// user:password@ never survives RedactURL or a ParseHost error.
func FuzzRedactURL(f *testing.F) {
	f.Add(uint8(1), "alice", "hunter2", "h:1/x")
	f.Add(uint8(0), "u", "pass", "[::1]:5")
	f.Add(uint8(2), "a", "c;d!", "h@x/y")
	f.Add(uint8(3), "a", "hunter2", "h:99999")
	f.Fuzz(func(t *testing.T, scheme uint8, user, pass, rest string) {
		prefix := []string{"", "http://", "https://", "ftp://"}[scheme%4]
		// The password must be recognisable and appear nowhere else.
		if len(pass) < 4 || strings.ContainsAny(user+pass, "@/:?#%\\") || strings.ContainsFunc(user+pass, unicode.IsSpace) ||
			strings.Contains(fmt.Sprintf("%s %q %q", prefix+user+rest, prefix+user, rest), pass) || strings.Contains(errWords, pass) {
			t.Skip()
		}
		s := prefix + user + ":" + pass + "@" + rest
		if got := RedactURL(s); strings.Contains(got, pass) {
			t.Fatalf("RedactURL(%q) = %q", s, got)
		}
		if _, err := ParseHost(s); err != nil && strings.Contains(err.Error(), pass) {
			t.Fatalf("ParseHost(%q): %v", s, err)
		}
	})
}

// TestBasicAuthProxy serves Ollama behind a proxy that wants basic auth:
// with the right user:password@ in the host, models are listed and chat
// answers; with a wrong one, the host is down and nothing shows the
// password.
func TestBasicAuthProxy(t *testing.T) {
	f := newFake(t, chatModelFake("a:1b"))
	target, _ := url.Parse(f.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cr:t@pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="ollama"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	host := func(pass string) string {
		return "http://" + url.UserPassword("alice", pass).String() + "@" + proxy.Listener.Addr().String()
	}

	// Allow.
	m, r := newModels(t, Config{Hosts: []string{host("s3cr:t@pw")}})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh through the proxy: %v", err)
	}
	if _, ok := r.Lookup("chat_a_1b"); !ok {
		t.Fatalf("no chat_a_1b through the proxy: %v", names(r))
	}
	if res := call(t, r, "chat_a_1b", map[string]any{"prompt": "hi"}); res.IsError || !strings.Contains(res.TextOf(), "Hello world") {
		t.Errorf("chat through the proxy: %s", res.TextOf())
	}
	if st := m.Hosts(); len(st) != 1 || !st[0].Up || strings.Contains(st[0].URL, "s3cr") {
		t.Errorf("Hosts() = %+v", st)
	}

	// Deny: a wrong password.
	m, r = newModels(t, Config{Hosts: []string{host("wrong-pass")}})
	err := m.Refresh(t.Context())
	if err == nil {
		t.Fatal("Refresh with a wrong password succeeded")
	}
	if _, ok := r.Lookup("chat_a_1b"); ok {
		t.Error("models listed with a wrong password")
	}
	st := m.Hosts()
	for _, s := range []string{err.Error(), st[0].URL, st[0].Err} {
		if strings.Contains(s, "wrong-pass") {
			t.Errorf("the password shows: %s", s)
		}
	}
	if st[0].Up || !strings.Contains(st[0].Err+err.Error(), "401") {
		t.Errorf("a 401 from the proxy: Hosts() = %+v, err %v", st, err)
	}
}
