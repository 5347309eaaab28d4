package ollama

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/membrane-mcp/membrane/diag"
)

// DiagnoseBackends checks each OpenAI-compatible backend as `membrane
// doctor` reports it: whether it answers GET /models, with the key it is
// given, as an OpenAI-compatible API, and what models it would serve. A
// fault says what was wrong and what to change.
func DiagnoseBackends(ctx context.Context, backends []Backend) []diag.Check {
	return diagnoseBackends(ctx, backends, FirstListWait)
}

func diagnoseBackends(ctx context.Context, backends []Backend, slow time.Duration) []diag.Check {
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	var out []diag.Check
	for _, b := range backends {
		h, err := newBackendHost(b, hc)
		if err != nil {
			fix := "give the backend as NAME=URL, with ,key-env=VAR or ,key-file=PATH for its key"
			if errors.Is(err, ErrNoKey) {
				fix = "set the key's variable in membrane's environment (with Docker Compose, in the env file), or point the backend's key-file at a file holding the key; membrane does not start without it"
			}
			out = append(out, diag.Check{Name: "backend " + b.Name, Status: diag.StatusFail, Detail: err.Error(), Fix: fix, Setting: "openai.backend_urls"})
			continue
		}
		name := "backend " + h.name
		start := time.Now()
		tags, err := h.list(ctx)
		if err != nil {
			out = append(out, diag.Check{Name: name, Status: diag.StatusFail,
				Detail: "cannot list models: " + h.describeErr(err), Fix: backendFix(backendFaultOf(err), h.oa.key != ""), Setting: "openai.backend_urls"})
			continue
		}
		took := time.Since(start)
		if len(tags) == 0 {
			out = append(out, diag.Check{Name: name, Status: diag.StatusWarn,
				Detail: "an OpenAI-compatible server that lists no models",
				Fix:    "serve or load a model there (vLLM and llama-server list the one they were started with, LM Studio its downloaded models, LiteLLM its model_list); membrane picks it up within the refresh interval"})
			continue
		}
		var chat, embed int
		for _, t := range tags {
			if contains(t.Capabilities, capEmbedding) {
				embed++
			} else {
				chat++
			}
		}
		out = append(out, diag.Check{Name: name, Status: diag.StatusOK,
			Detail: fmt.Sprintf("OpenAI-compatible: %d models (%d chat, %d embedding), answered in %s", len(tags), chat, embed, roundTook(took))})
		if took > slow {
			out = append(out, slowHost(name, took, slow))
		}
	}
	return out
}

// backendFix is what to do about a backend that could not be listed.
func backendFix(f backendFault, keySent bool) string {
	switch f {
	case faultUnreachable:
		return "start the server, or correct the backend's URL (host and port); membrane serves the other tools meanwhile and picks the backend up when it answers"
	case faultAuth:
		if !keySent {
			return "give the backend its API key: ,key-env=VAR or ,key-file=PATH after its URL, or key_env / key_file in its openai.backends entry"
		}
		return "give the backend the key its server expects (vLLM's and llama-server's --api-key, LiteLLM's master or virtual key, LM Studio's API token): check the variable or file its key_env / key_file names"
	case faultNotOpenAI:
		return "point the URL at the server's OpenAI-compatible base, the path before /models, such as http://HOST:8000/v1 (a URL with no path gets /v1)"
	}
	return "check the backend's URL and that its server is healthy"
}
