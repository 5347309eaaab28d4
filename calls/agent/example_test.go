package agent_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
)

// A model that calls the "add" tool once and then answers with its result.
// Real programs pass an adapter such as calls/agent/openaicompat.Client.
func Example() {
	r := calls.NewRouter(nil)
	_ = r.Add(calls.Call{
		Name:        "add",
		Description: "Add two numbers.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}`),
		Kind:        calls.KindTool,
		Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			var in struct {
				A float64 `json:"a"`
				B float64 `json:"b"`
			}
			if err := calls.DecodeArgs(req.Arguments, &in); err != nil {
				return calls.Errorf("%v", err), nil
			}
			return calls.Text(fmt.Sprint(in.A + in.B)), nil
		}),
	})
	model := agent.ModelFunc(func(ctx context.Context, req *agent.Request, onDelta func(agent.Delta)) (*agent.Reply, error) {
		last := req.Messages[len(req.Messages)-1]
		if last.Role == agent.RoleTool {
			return &agent.Reply{Message: agent.Message{Content: "2 + 3 = " + last.Content}}, nil
		}
		return &agent.Reply{Message: agent.Message{ToolCalls: []agent.ToolCall{{Name: "add", Arguments: `{"a":2,"b":3}`}}}}, nil
	})

	a := agent.New(model, r, &agent.Options{MaxSteps: 5})
	turn, err := a.Ask(context.Background(), "What is 2 + 3?")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(turn.Answer)
	fmt.Println(turn.Steps, "steps;", turn.Calls[0].Name, turn.Calls[0].Arguments, "→", turn.Calls[0].Result)
	// Output:
	// 2 + 3 = 5
	// 2 steps; add {"a":2,"b":3} → 5
}

// Tool calls that a local model wrote as text.
func ExampleExtractToolCalls() {
	text := "Sure.\n<tool_call>\n{\"name\": \"sh\", \"arguments\": {\"cmd\": \"ls\"}}\n</tool_call>"
	found, rest := agent.ExtractToolCalls(text, func(name string) bool { return name == "sh" })
	fmt.Printf("%s %s %q\n", found[0].Name, found[0].Arguments, rest)
	// Output: sh {"cmd":"ls"} "Sure."
}
