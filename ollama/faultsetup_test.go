package ollama

import (
	"net/http"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// This file holds the set-up the Ollama and backend fault tests share.

// hangChat is a chat handler that writes the start of an answer (start may
// be nil: headers only), flushes, and then holds the stream open until the
// client goes away; closed is closed then, so a test sees that membrane
// closed the upstream request.
func hangChat(start func(w http.ResponseWriter)) (h http.HandlerFunc, closed <-chan struct{}) {
	done := make(chan struct{})
	return func(w http.ResponseWriter, r *http.Request) {
		if start != nil {
			start(w)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the client went away
		close(done)
	}, done
}

// wantUpstreamClosed fails t unless closed is closed soon: the upstream
// request was let go.
func wantUpstreamClosed(t testing.TB, closed <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("the upstream request was not closed after %s", after)
	}
}

// backendModels returns Models serving only the OpenAI-compatible server at
// url, as backend "fb" (the Ollama host is a closed port), refreshed once.
// cfg gives the other settings; b the backend's own, past Name and URL.
func backendModels(t testing.TB, url string, cfg Config, b Backend) (*Models, *calls.Router) {
	t.Helper()
	b.Name, b.URL = "fb", url
	cfg.Hosts = []string{"127.0.0.1:1"}
	cfg.Backends = []Backend{b}
	m, r := newModels(t, cfg)
	m.Refresh(t.Context())
	return m, r
}
