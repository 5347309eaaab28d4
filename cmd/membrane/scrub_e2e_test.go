package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// TestScrubOutputEndToEnd runs a real sh in the real sandbox that prints
// secrets and look-alikes: with --scrub-output (the default) the model gets
// each secret as a marker and the look-alikes as they were; with
// --scrub-output=false, the output unchanged.
func TestScrubOutputEndToEnd(t *testing.T) {
	bin := binary(t)
	const token = "e2e-server-token-7d3f9a1c5b2e"
	t.Setenv("MEMBRANE_TOKEN", token)
	// A secret only membrane's environment holds, named by --secret-env.
	const deploy = "s3cr3t-deploy-value-9f8e"
	t.Setenv("E2E_DEPLOY_KEY", deploy)
	gh := "ghp_" + strings.Repeat("a1B2", 9)
	secrets := map[string]string{
		"AKIAIOSFODNN7EXAMPLE": "aws-access-key",
		gh:                     "github-token",
		"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj": "private-key",
		token:  "secret",
		deploy: "secret",
	}
	const sha = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881" // sha256 of "x"
	const uuid = "123e4567-e89b-12d3-a456-426614174000"
	script := `printf 'id %s\ngh %s\n' AKIAIOSFODNN7EXAMPLE ` + gh + `
printf -- '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n'
echo "server ` + token + `"
echo "deploy ` + deploy + `"
printf x | sha256sum
echo ` + uuid + `
head -c 3000 /dev/urandom | base64 -w0 | sed 's/^/png data:image\/png;base64,iVBORw0KGgo/'; echo`

	for _, on := range []bool{true, false} {
		args := append([]string{"--secret-env", "E2E_DEPLOY_KEY"}, noOllama...)
		if !on {
			args = append([]string{"--scrub-output=false"}, args...)
		}
		cs, _, _ := launch(t, bin, args, nil)
		res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": script})
		sandboxWorks(t, res, text)
		if res.IsError {
			t.Fatalf("sh failed: %s", text)
		}
		st, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{sha, uuid, "data:image/png;base64,iVBORw0KGgo"} {
			if !strings.Contains(text, want) {
				t.Errorf("scrub %v: look-alike %q lost:\n%s", on, want, text)
			}
		}
		for secret, kind := range secrets {
			for where, got := range map[string]string{"text": text, "structured": string(st)} {
				if on && (strings.Contains(got, secret) || !strings.Contains(got, "[membrane: redacted "+kind+"]")) {
					t.Errorf("scrubbed %s: %s not replaced by its %s marker:\n%s", where, secret, kind, got)
				}
				if !on && (!strings.Contains(got, secret) || strings.Contains(got, "[membrane: redacted")) {
					t.Errorf("unscrubbed %s: %s changed:\n%s", where, secret, got)
				}
			}
		}
		cs.Close()
	}
}
