package scrub_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls/scrub"
)

const pemKey = `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj
MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu
-----END PRIVATE KEY-----`

func TestStringFindsEachKind(t *testing.T) {
	t.Parallel()
	s := scrub.New(&scrub.Options{Secrets: []string{"membrane-token-0123456789", "abc"}})
	for _, tc := range []struct{ in, want string }{
		{"token is membrane-token-0123456789.", "token is [membrane: redacted secret]."},
		{"key AKIAIOSFODNN7EXAMPLE here", "key [membrane: redacted aws-access-key] here"},
		{"ghp_" + strings.Repeat("a1B2", 9), "[membrane: redacted github-token]"},
		{"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[membrane: redacted github-token]"},
		{"glpat-abcdefghij0123456789", "[membrane: redacted gitlab-token]"},
		{"xoxb-1234567890-abcdefghij", "[membrane: redacted slack-token]"},
		{"sk-proj-abcdefghijklmnopqrstuvwxyz012345", "[membrane: redacted openai-key]"},
		{"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end", "jwt [membrane: redacted jwt] end"},
		{"x\n" + pemKey + "\ny", "x\n[membrane: redacted private-key]\ny"},
		{"cut -----BEGIN RSA PRIVATE KEY-----\nMIIEow", "cut [membrane: redacted private-key]"},
		{"Authorization: Bearer abcdefghijklmnop0123", "Authorization: Bearer [membrane: redacted bearer-token]"},
		{"postgres://admin:s3cr3t@db:5432/x", "postgres://admin:[membrane: redacted password]@db:5432/x"},
		{"login password=hunter2 now", "login password=[membrane: redacted password] now"},
		{`{"cmd":"mysql --password='p a s s'"}`, `{"cmd":"mysql --password='[membrane: redacted password]'"}`},
		{"API_KEY: xyz123", "API_KEY: [membrane: redacted password]"},
		{"abc is too short to be a secret", "abc is too short to be a secret"},
	} {
		if got := s.String(tc.in); got != tc.want {
			t.Errorf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestNoFalsePositives: what only looks random is not a secret.
func TestNoFalsePositives(t *testing.T) {
	t.Parallel()
	s := scrub.New(nil)
	sum := sha256.Sum256([]byte("x"))
	img := make([]byte, 64<<10)
	rand.Read(img)
	for _, in := range []string{
		hex.EncodeToString(sum[:]),
		"sha256:" + hex.EncodeToString(sum[:]),
		"123e4567-e89b-12d3-a456-426614174000",
		"data:image/png;base64," + base64.StdEncoding.EncodeToString(img),
		base64.StdEncoding.EncodeToString(img),
		"git commit 3f2a9c1b7d4e5f60718293a4b5c6d7e8f9012345",
		"the password is in the vault; tokens: 12 in, 40 out",
		"ls -la /workspace && echo done",
		"https://example.com/path?q=1",
		"AKIA is a prefix; AKIASHORT is not a key",
		"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
		"sk-short",
	} {
		if got := s.String(in); got != in {
			t.Errorf("String changed a harmless text:\n  in %.120q\n got %.120q", in, got)
		}
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	s := scrub.New(&scrub.Options{Secrets: []string{"tok-0123456789"}})
	in := `{"cmd":"curl -H 'Authorization: Bearer tok-0123456789' https://u:pw@h/","password":"plain","n":12345678901234567890,"nested":[{"api_key":"v"},{"text":"AKIAIOSFODNN7EXAMPLE"}],"empty":{"token":""}}`
	got := string(s.JSON([]byte(in)))
	for _, bad := range []string{"tok-0123456789", "plain", `"v"`, "AKIAIOSFODNN7EXAMPLE", ":pw@"} {
		if strings.Contains(got, bad) {
			t.Errorf("JSON kept %q: %s", bad, got)
		}
	}
	for _, good := range []string{`"n":12345678901234567890`, `"password":"[membrane: redacted password]"`, `"token":""`, "https://u:"} {
		if !strings.Contains(got, good) {
			t.Errorf("JSON lost %q: %s", good, got)
		}
	}
	if !json.Valid([]byte(got)) {
		t.Errorf("invalid JSON: %s", got)
	}
	// Not JSON: scrubbed as text, returned as a JSON string.
	if got := string(s.JSON([]byte("not json AKIAIOSFODNN7EXAMPLE"))); got != `"not json [membrane: redacted aws-access-key]"` {
		t.Errorf("non-JSON: %s", got)
	}
}

// FuzzString checks the properties a caller relies on: a configured
// secret never survives, scrubbing twice changes nothing more, and text
// without secrets is returned as it was.
func FuzzString(f *testing.F) {
	for _, seed := range []string{"", "password=x", pemKey, "AKIAIOSFODNN7EXAMPLE", "a:b@c", "xx SECRETVALUE yy", "[membrane: redacted password]"} {
		f.Add(seed)
	}
	const secret = "SECRETVALUE"
	s := scrub.New(&scrub.Options{Secrets: []string{secret}})
	f.Fuzz(func(t *testing.T, in string) {
		once := s.String(in)
		if strings.Contains(once, secret) {
			t.Fatalf("secret survived: %q -> %q", in, once)
		}
		if twice := s.String(once); twice != once {
			t.Fatalf("not idempotent:\n once %q\ntwice %q", once, twice)
		}
		if len(s.Find(in)) == 0 && once != in {
			t.Fatalf("no match but changed: %q -> %q", in, once)
		}
	})
}
