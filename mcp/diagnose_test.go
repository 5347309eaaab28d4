package mcp_test

import (
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/diag"
	"github.com/membrane-mcp/membrane/mcp"
)

func TestDiagnoseListen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, token string
		status      diag.Status
		detail      string
	}{
		{"127.0.0.1:8765", "", diag.StatusOK, "without a token (loopback only)"},
		{"0.0.0.0:8765", "s3cret", diag.StatusOK, "with a bearer token"},
		{"0.0.0.0:8765", "", diag.StatusFail, "without a token"},
		{"no-port", "", diag.StatusFail, "want host:port"},
	} {
		c := mcp.DiagnoseListen(tc.addr, tc.token)
		if c.Name != "http" || c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) {
			t.Errorf("%s token=%q: %+v", tc.addr, tc.token, c)
		}
		if tc.status == diag.StatusFail && (c.Fix == "" || c.Setting != "http.token") {
			t.Errorf("%s: a failure without its fix or setting: %+v", tc.addr, c)
		}
		if tc.status == diag.StatusOK && !strings.Contains(c.Detail, "http://"+tc.addr+mcp.DefaultPath) {
			t.Errorf("%s: detail %q lacks the URL", tc.addr, c.Detail)
		}
	}
}
