package openaicompat_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
)

// replying serves every request with status and body.
func replying(t *testing.T, status int, contentType, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// TestErrorBodiesExplained: error replies in the forms other servers than
// OpenAI's use still say their status and what to do. These are fault
// servers: Ollama has no keys, and answers no path with a web page.
func TestErrorBodiesExplained(t *testing.T) {
	for _, tt := range []struct {
		name, ctype, body string
		status            int
		want              []string
	}{
		// vLLM's --api-key check, LM Studio's: "error" is a string.
		{"vLLM key refused", "application/json", `{"error":"Unauthorized"}`, 401, []string{"refused the API key (HTTP 401): Unauthorized", "OPENAI_API_KEY"}},
		// The control: the OpenAI form was always read.
		{"OpenAI key refused", "application/json", `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}`, 401, []string{"refused the API key (HTTP 401): Incorrect API key provided"}},
		// FastAPI's validation form.
		{"detail", "application/json", `{"detail":"max_tokens must be at least 1"}`, 400, []string{"HTTP 400: max_tokens must be at least 1"}},
		// A web server at the URL (python -m http.server answers POST so).
		{"web page", "text/html", "<!DOCTYPE HTML>\n<html><head><title>Error response</title></head><body>501</body></html>", 501,
			[]string{"HTTP 501: an HTML page (Error response), not an OpenAI-compatible API reply", "should end in /v1"}},
		{"plain text", "text/plain", "upstream connect error", 502, []string{"HTTP 502: upstream connect error"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := openaicompat.New(&openaicompat.Options{BaseURL: replying(t, tt.status, tt.ctype, tt.body), APIKey: "k", Model: "m"})
			_, err := c.Complete(t.Context(), &agent.Request{Messages: []agent.Message{{Role: agent.RoleUser, Content: "q"}}}, func(agent.Delta) {})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "cannot unmarshal") || strings.Contains(err.Error(), "<html") {
				t.Errorf("error %q shows the decoder's complaint or the page", err)
			}
		})
	}
}

// TestOpenAIGoErrorBodies pins the openai-go behaviour errorBodies works
// around: an error reply whose "error" is a string is returned as a JSON
// decoding error, with no *openai.Error and so no status; the OpenAI form
// gives one.
func TestOpenAIGoErrorBodies(t *testing.T) {
	call := func(url string) error {
		oc := openai.NewClient(option.WithBaseURL(url), option.WithAPIKey("k"), option.WithMaxRetries(0))
		_, err := oc.Models.List(t.Context())
		return err
	}
	var apiErr *openai.Error
	if err := call(replying(t, 401, "application/json", `{"error":"Unauthorized"}`)); err == nil || errors.As(err, &apiErr) {
		t.Errorf("openai-go now reads a string error (%v, %T): errorBodies may go", err, err)
	}
	if err := call(replying(t, 401, "application/json", `{"error":{"message":"no"}}`)); !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Errorf("the OpenAI form: %v", err)
	}
}
