package ollama_test

import (
	"context"
	"fmt"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/ollama"
)

// Serve the models of the Ollama that OLLAMA_HOST names, plus a logical
// tool, as calls in a router. With no Ollama reachable (here, a port
// nothing listens on) the generic tools are still there, and say why they
// cannot help; the models' own tools appear once the host answers.
func Example() {
	r := calls.NewRouter(nil)
	m, err := ollama.New(ollama.Config{
		Hosts: []string{"127.0.0.1:1"},
		Tools: []ollama.ToolSpec{{Tool: "code_assistant", Model: "qwen2.5-coder:7b", System: "You write Go."}},
	}, r, nil)
	if err != nil {
		panic(err)
	}
	// A server runs m.Run(ctx) in the background instead: it refreshes on
	// an interval until ctx ends.
	_ = m.Refresh(context.Background())
	for _, c := range r.List() {
		fmt.Println(c.Name)
	}
	fmt.Println(m.Hosts()[0].Up)
	// Output:
	// ollama_chat
	// ollama_embed
	// ollama_models
	// false
}
