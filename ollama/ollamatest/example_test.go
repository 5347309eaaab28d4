package ollamatest_test

import (
	"context"
	"fmt"
	"log"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// A test drives a tool-calling exchange against a real Ollama: the scripted
// model calls sh, then answers once the tool message is in.
func ExampleScriptedModel() {
	var t *testing.T // in a real test, the test's t

	srv := ollamatest.Start(t)
	srv.Create(t, "scripted", ollamatest.ScriptedModel(ollamatest.Script{
		Calls:  []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo hello"}`}},
		Answer: " The command printed hello.",
	}))
	// The code under test would take srv.URL or OLLAMA_HOST=srv.Host.
	fmt.Println(srv.URL)
}

// A program (no testing.T) starts, uses and stops a server with errors.
func ExampleStartServer() {
	ctx := context.Background()
	srv, err := ollamatest.StartServer(ctx, nil) // builds Ollama on first use
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	if err := srv.CreateModel(ctx, "embed", ollamatest.EmbedModel(32)); err != nil {
		log.Fatal(err)
	}
	resp, err := srv.Client().Embed(ctx, &api.EmbedRequest{Model: "embed", Input: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(resp.Embeddings[0]))
}
