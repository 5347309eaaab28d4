package mcp

import (
	"github.com/membrane-mcp/membrane/diag"
)

// DiagnoseListen is the self-diagnosis of an HTTP listener on addr with
// token ("" for none), as `membrane doctor` reports it: whether it would
// serve there (CheckListen), and with what authentication.
func DiagnoseListen(addr, token string) diag.Check {
	c := diag.Check{Name: "http", Status: diag.StatusOK, Detail: "would serve http://" + addr + DefaultPath}
	switch err := CheckListen(addr, token); {
	case err != nil:
		c.Status, c.Detail, c.Fix, c.Setting = diag.StatusFail, err.Error(), "set a token, or listen on 127.0.0.1", "http.token"
	case token == "":
		c.Detail += " without a token (loopback only)"
	default:
		c.Detail += " with a bearer token"
	}
	return c
}
