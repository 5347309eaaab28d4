package main

import (
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/diag"
)

// A doctor finding about a setting gets that setting's flag, variable and
// file key; one about no setting keeps its fix as the library wrote it.
func TestDoctorAdviceNamesSetting(t *testing.T) {
	t.Parallel()
	checks := []diag.Check{
		{Name: "net", Status: diag.StatusWarn, Fix: "turn it off", Setting: "sandbox.network"},
		{Name: "plain", Status: diag.StatusWarn, Fix: "install bubblewrap"},
		{Name: "odd", Status: diag.StatusWarn, Fix: "see", Setting: "no.such_key"},
	}
	diag.Advise(checks, settingNames)
	if got, want := checks[0].Fix, "turn it off (--sandbox-network, MEMBRANE_SANDBOX_NETWORK or sandbox.network in the config file)"; got != want {
		t.Errorf("advice = %q, want %q", got, want)
	}
	if got := checks[1].Fix; got != "install bubblewrap" {
		t.Errorf("a fix about no setting changed: %q", got)
	}
	if got := checks[2].Fix; !strings.HasSuffix(got, "(no.such_key)") {
		t.Errorf("unknown key: %q", got)
	}
}

// Every key the libraries' doctor findings name is a defined setting.
func TestDoctorSettingKeysDefined(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"ollama.hosts", "sandbox.python", "sandbox.allow_memfd", "sandbox.network", "sandbox.mode"} {
		if got := settingNames(key); !strings.Contains(got, "--") {
			t.Errorf("%s: %q names no flag", key, got)
		}
	}
}
