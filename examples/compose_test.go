package examples

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// loadCompose loads the repository's compose.yaml with compose-spec's own
// loader (schema validation, interpolation, env files, profiles), as
// `docker compose` would, with only env set in its environment.
func loadCompose(t *testing.T, file string, env []string, profiles ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(repoRoot(t)),
		cli.WithEnv(env),
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	return opts.LoadProject(t.Context())
}

// tokenEnvFile writes an env file like the one the README tells users to
// make and returns the environment that points compose.yaml at it.
func tokenEnvFile(t *testing.T) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "membrane.env")
	if err := os.WriteFile(f, []byte("MEMBRANE_TOKEN=test-token-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"MEMBRANE_ENV_FILE=" + f}
}

func TestComposeLoads(t *testing.T) {
	file := filepath.Join(repoRoot(t), "compose.yaml")
	env := tokenEnvFile(t)

	p, err := loadCompose(t, file, env)
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	if got := slices.Sorted(maps.Keys(p.Services)); !slices.Equal(got, []string{"membrane", "ollama"}) {
		t.Errorf("default services = %v, want [membrane ollama] (the orchestrator only in its profile)", got)
	}
	if _, ok := p.DisabledServices["orchestrator"]; !ok {
		t.Errorf("orchestrator is not a profile-gated service")
	}
	for _, problem := range checkCompose(p, true) {
		t.Error(problem)
	}

	full, err := loadCompose(t, file, env, "orchestrator")
	if err != nil {
		t.Fatalf("compose.yaml with --profile orchestrator does not load: %v", err)
	}
	if got := slices.Sorted(maps.Keys(full.Services)); !slices.Equal(got, []string{"membrane", "ollama", "orchestrator"}) {
		t.Errorf("services with the orchestrator profile = %v", got)
	}
	for _, problem := range checkCompose(full, true) {
		t.Error(problem)
	}
	o := full.Services["orchestrator"]
	if !slices.Equal(o.Profiles, []string{"orchestrator"}) {
		t.Errorf("orchestrator profiles = %v, want [orchestrator]", o.Profiles)
	}
	if got := envValue(o.Environment, "MEMBRANE_TOKEN"); got != "test-token-123" {
		t.Errorf("orchestrator MEMBRANE_TOKEN = %q, want the env file's", got)
	}
}

// TestComposeEnvFileRequired: without the token file, compose stops with an
// error that names it, rather than starting membrane without a token.
func TestComposeEnvFileRequired(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.env")
	_, err := loadCompose(t, filepath.Join(repoRoot(t), "compose.yaml"), []string{"MEMBRANE_ENV_FILE=" + missing})
	if err == nil {
		t.Fatal("compose.yaml loads without its env file; want an error")
	}
	if !strings.Contains(err.Error(), "nope.env") {
		t.Errorf("error %q does not name the missing env file", err)
	}
}

// TestComposeChecksCatchMistakes feeds checkCompose broken variants of
// compose.yaml, so that the checks above are shown able to fail.
func TestComposeChecksCatchMistakes(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(repoRoot(t), "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"published on every interface", `"127.0.0.1:${MEMBRANE_PORT:-8765}:8765"`, `"${MEMBRANE_PORT:-8765}:8765"`, "not on loopback"},
		{"no health condition", "condition: service_healthy\n\n  orchestrator:", "condition: service_started\n\n  orchestrator:", "service_healthy"},
		{"ollama without healthcheck", `test: ["CMD", "ollama", "list"]`, `disable: true`, "ollama: no healthcheck"},
		{"wrong Ollama address", "OLLAMA_HOST: http://ollama:11434\n      NO_COLOR: \"1\"\n      # OpenAI-compatible servers", "OLLAMA_HOST: http://127.0.0.1:11434\n      NO_COLOR: \"1\"\n      # OpenAI-compatible servers", "OLLAMA_HOST"},
		{"healthcheck on another port", "urlopen('http://127.0.0.1:8765/healthz'", "urlopen('http://127.0.0.1:9999/healthz'", "/healthz"},
		{"token in the file", "      OLLAMA_HOST: http://ollama:11434\n      NO_COLOR: \"1\"\n      # OpenAI-compatible servers", "      OLLAMA_HOST: http://ollama:11434\n      MEMBRANE_TOKEN: hunter2\n      NO_COLOR: \"1\"\n      # OpenAI-compatible servers", "MEMBRANE_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(orig), tt.old) {
				t.Fatalf("compose.yaml no longer contains %q: update this test", tt.old)
			}
			mutated := strings.Replace(string(orig), tt.old, tt.new, 1)
			f := filepath.Join(t.TempDir(), "compose.yaml")
			if err := os.WriteFile(f, []byte(mutated), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := loadCompose(t, f, tokenEnvFile(t), "orchestrator")
			if err != nil {
				t.Fatalf("mutated file does not load: %v", err)
			}
			problems := checkCompose(p, false)
			if !slices.ContainsFunc(problems, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("checks missed the mistake; problems = %q, want one mentioning %q", problems, tt.want)
			}
		})
	}
}

// checkCompose lists what is wrong with a loaded compose project. fileChecks
// also checks what only the real file has (the Dockerfile path).
func checkCompose(p *types.Project, fileChecks bool) []string {
	var bad []string
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }

	for name, s := range p.Services {
		for _, port := range s.Ports {
			if ip := net.ParseIP(port.HostIP); ip == nil || !ip.IsLoopback() {
				add("%s: port %d is published on %q, not on loopback", name, port.Target, port.HostIP)
			}
		}
		for _, v := range []string{"MEMBRANE_TOKEN", "OPENAI_API_KEY"} {
			if _, ok := s.Environment[v]; ok && !fromEnvFile(p, s, v) {
				add("%s: %s is set in compose.yaml itself; it belongs in the env file", name, v)
			}
		}
	}

	ollama, ok := p.Services["ollama"]
	if !ok {
		return append(bad, "no ollama service")
	}
	if !strings.HasPrefix(ollama.Image, "ollama/ollama:") {
		add("ollama: image %q is not the official ollama/ollama", ollama.Image)
	}
	if hc := ollama.HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
		add("ollama: no healthcheck")
	}

	m, ok := p.Services["membrane"]
	if !ok {
		return append(bad, "no membrane service")
	}
	if m.Build == nil {
		add("membrane: not built from this repository")
	} else if fileChecks {
		if m.Build.Context != p.WorkingDir {
			add("membrane: build context %q is not the repository root %q", m.Build.Context, p.WorkingDir)
		}
		if _, err := os.Stat(filepath.Join(m.Build.Context, m.Build.Dockerfile)); err != nil {
			add("membrane: dockerfile: %v", err)
		}
	}
	if got := envValue(m.Environment, "MEMBRANE_TOKEN"); got == "" {
		add("membrane: MEMBRANE_TOKEN is not set from the env file")
	}
	if got := envValue(m.Environment, "OLLAMA_HOST"); got != "http://ollama:11434" {
		add("membrane: OLLAMA_HOST = %q, want the ollama service, http://ollama:11434", got)
	}
	if len(m.Ports) != 1 || m.Ports[0].Target != 8765 {
		add("membrane: ports = %+v, want one, to 8765", m.Ports)
	}
	if i := slices.Index(m.Command, "--http"); i < 0 || i+1 >= len(m.Command) || !strings.HasSuffix(m.Command[i+1], ":8765") {
		add("membrane: command %q does not serve HTTP on :8765", m.Command)
	}
	if hc := m.HealthCheck; hc == nil || hc.Disable || !strings.Contains(strings.Join(hc.Test, " "), "http://127.0.0.1:8765/healthz") {
		add("membrane: healthcheck does not ask http://127.0.0.1:8765/healthz")
	}
	for _, opt := range []string{"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"} {
		if !slices.Contains(m.SecurityOpt, opt) {
			add("membrane: security_opt lacks %s, which bubblewrap needs in a container", opt)
		}
	}
	if d, ok := m.DependsOn["ollama"]; !ok || d.Condition != types.ServiceConditionHealthy {
		add("membrane: does not wait for ollama to be service_healthy")
	}

	if o, ok := p.Services["orchestrator"]; ok {
		if d, ok := o.DependsOn["membrane"]; !ok || d.Condition != types.ServiceConditionHealthy {
			add("orchestrator: does not wait for membrane to be service_healthy")
		}
		if o.Image != m.Image {
			add("orchestrator: image %q differs from membrane's %q, which holds the orchestrator binary", o.Image, m.Image)
		}
	}
	return bad
}

// fromEnvFile reports whether s's value of v comes from one of its env
// files rather than from compose.yaml.
func fromEnvFile(p *types.Project, s types.ServiceConfig, v string) bool {
	for _, ef := range s.EnvFiles {
		b, err := os.ReadFile(ef.Path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, val, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == v {
				return strings.TrimSpace(val) == envValue(s.Environment, v)
			}
		}
	}
	return false
}

func envValue(m types.MappingWithEquals, k string) string {
	if v, ok := m[k]; ok && v != nil {
		return *v
	}
	return ""
}

// TestComposeHealthcheckCommand runs membrane's healthcheck command, as
// compose.yaml writes it, against a real membrane serving HTTP, and against
// a port nobody serves: it must pass and fail accordingly. python3 is what
// the runtime image installs for it.
func TestComposeHealthcheckCommand(t *testing.T) {
	p, err := loadCompose(t, filepath.Join(repoRoot(t), "compose.yaml"), tokenEnvFile(t))
	if err != nil {
		t.Fatal(err)
	}
	test := p.Services["membrane"].HealthCheck.Test
	if len(test) < 2 || test[0] != "CMD" {
		t.Fatalf("healthcheck test = %q, want an exec form [CMD ...]", test)
	}
	argv := test[1:]
	py := pythonBinary(t)

	srv := startMembraneHTTP(t, nil, "")
	run := func(port string) error {
		args := slices.Clone(argv)
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], "127.0.0.1:8765", "127.0.0.1:"+port)
		}
		if args[0] == "python3" {
			args[0] = py
		}
		out, err := exec.CommandContext(t.Context(), args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := run(srv.Port); err != nil {
		t.Errorf("healthcheck against a healthy membrane failed: %v", err)
	}
	if err := run(freePort(t)); err == nil {
		t.Errorf("healthcheck passed against a port nobody serves")
	}
}

// serviceEnv is what a compose service's process sees: the service's
// environment (env files merged in by the loader), with the compose
// network's host names replaced by this test's loopback addresses. PATH
// and HOME come from the test, as the image would provide its own.
func serviceEnv(s types.ServiceConfig, hosts map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range s.Environment {
		if v == nil {
			continue
		}
		val := *v
		for from, to := range hosts {
			val = strings.ReplaceAll(val, from, to)
		}
		env = append(env, k+"="+val)
	}
	return env
}

// TestComposeServicesRun runs the membrane and orchestrator services the
// way compose.yaml configures them (command, entrypoint, environment, the
// token from the env file), as local processes: no Docker engine here. Only
// the compose network's names are swapped for loopback addresses: ollama is
// a real test Ollama with the scripted model, and membrane listens on
// 0.0.0.0 as in the container, so it needs its token. The orchestrator must
// reach membrane over HTTP with that token and finish with the scripted
// answer.
func TestComposeServicesRun(t *testing.T) {
	needBwrap(t)
	env := append(tokenEnvFile(t), "MEMBRANE_MODEL=scripted")
	p, err := loadCompose(t, filepath.Join(repoRoot(t), "compose.yaml"), env, "orchestrator")
	if err != nil {
		t.Fatal(err)
	}
	ollama := scriptedOllama(t)

	m := p.Services["membrane"]
	hosts := map[string]string{"http://ollama:11434": ollama.URL}
	srv := startMembrane(t, func(port string) []string {
		args := slices.Clone([]string(m.Command))
		for i := range args {
			args[i] = strings.Replace(args[i], "0.0.0.0:8765", "0.0.0.0:"+port, 1)
		}
		return args
	}, serviceEnv(m, hosts))

	// Without the token the endpoint refuses; with it, it serves.
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /mcp without the token: %d, want 401", resp.StatusCode)
	}

	o := p.Services["orchestrator"]
	if len(o.Entrypoint) != 1 || o.Entrypoint[0] != "orchestrator" {
		t.Fatalf("orchestrator entrypoint = %q", o.Entrypoint)
	}
	hosts["membrane:8765"] = "127.0.0.1:" + srv.Port
	orch := exec.CommandContext(t.Context(), mcptest.BuildBinary(t, "./cmd/orchestrator"), "-e", "Run echo hello and tell me what it printed.")
	orch.Env = serviceEnv(o, hosts)
	out, err := orch.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "The command printed hello.") {
		t.Fatalf("orchestrator as compose runs it: %v\n%s\nmembrane log:\n%s", err, out, srv.Log.String())
	}
	if !strings.Contains(srv.Log.String(), "call=sh") {
		t.Errorf("membrane's log shows no sh call:\n%s", srv.Log.String())
	}
}

// TestComposeGPUBlock uncomments the NVIDIA reservation of the ollama
// service, as a user on a GPU box would, and checks that the result loads
// and asks for NVIDIA GPUs.
func TestComposeGPUBlock(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	start := slices.Index(lines, "    # deploy:")
	if start < 0 {
		t.Fatal(`compose.yaml has no commented "    # deploy:" block under ollama`)
	}
	end := start
	for end < len(lines) && strings.HasPrefix(lines[end], "    # ") {
		lines[end] = "    " + strings.TrimPrefix(lines[end], "    # ")
		end++
	}
	f := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := loadCompose(t, f, tokenEnvFile(t))
	if err != nil {
		t.Fatalf("compose.yaml with the GPU block uncommented does not load: %v", err)
	}
	d := p.Services["ollama"].Deploy
	if d == nil || d.Resources.Reservations == nil || len(d.Resources.Reservations.Devices) != 1 {
		t.Fatalf("ollama deploy = %+v, want one device reservation", d)
	}
	dev := d.Resources.Reservations.Devices[0]
	if dev.Driver != "nvidia" || !slices.Contains(dev.Capabilities, "gpu") || dev.Count != -1 {
		t.Errorf("device reservation = %+v, want driver nvidia, capabilities [gpu], count all (-1)", dev)
	}
}
