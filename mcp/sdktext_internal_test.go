package mcp

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestSDKErrorTexts pins the go-sdk texts that sdkFailureOf reads: each
// failure is sent to a bare SDK handler (no membrane layer), and its answer
// must still classify as before. When this fails after an upgrade, update
// sdkFailureOf and sdkTextsCheckedWith together.
func TestSDKErrorTexts(t *testing.T) {
	t.Parallel()
	s := sdk.NewServer(&sdk.Implementation{Name: "bare", Version: "1"}, nil)
	ts := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil))
	defer ts.Close()
	cases := []struct {
		name   string
		body   string
		status int
		want   sdkFailure
	}{
		{"cut JSON", `{"jsonrpc":`, http.StatusBadRequest, sdkFailureMalformed},
		{"not JSON", `{xx}`, http.StatusBadRequest, sdkFailureMalformed},
		{"unknown method without a session", `{"jsonrpc":"2.0","id":1,"method":"foo/bar"}`, http.StatusBadRequest, sdkFailureUnknownMethod},
		{"a method before initialize", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, http.StatusOK, sdkFailureBeforeInit},
	}
	for _, c := range cases {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		msg := strings.TrimSpace(string(b))
		if c.want == sdkFailureBeforeInit {
			// An SSE event whose JSON-RPC error has code 0.
			_, data, _ := strings.Cut(msg, "data: ")
			var r struct {
				Error struct {
					Code    int64  `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &r); err != nil {
				t.Fatalf("%s: %q: %v", c.name, msg, err)
			}
			if r.Error.Code != 0 {
				t.Errorf("%s: go-sdk now gives code %d: fixErrorCode may no longer be needed", c.name, r.Error.Code)
			}
			msg = r.Error.Message
		}
		if resp.StatusCode != c.status || sdkFailureOf(msg) != c.want {
			t.Errorf("%s: go-sdk (texts checked with %s) answered %d %q, classified %d; want %d classified %d",
				c.name, sdkTextsCheckedWith, resp.StatusCode, msg, sdkFailureOf(msg), c.status, c.want)
		}
	}
	if sdkFailureOf("something else entirely") != sdkFailureOther {
		t.Error("an unknown text was classified")
	}
}
