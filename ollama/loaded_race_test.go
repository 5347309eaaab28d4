package ollama

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestLoadedReadBesideMarks: a model call marking its model loaded on a
// host (markLoaded) while the refresh reads the host's /api/ps
// (readLoaded) share no map unlocked: the reading hands the scheduler
// its own copies. Run with -race (make test does); the real test Ollama
// answers /api/ps. The marks survive the readings that came before them.
func TestLoadedReadBesideMarks(t *testing.T) {
	srv := ollamatest.Start(t)
	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(base, http.DefaultClient)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 50 {
			if err := h.readLoaded(t.Context()); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for range 2000 {
			h.markLoaded("marked:latest", "marked:latest", 0)
		}
	})
	wg.Wait()
	h.markLoaded("marked:latest", "marked:latest", 0)
	if !h.isLoaded("marked:latest", time.Now()) {
		t.Error("a model marked loaded is not")
	}
}
