package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/sandbox"
)

// The sandbox's calls go into a router like any others; each session gets
// its own workspace, removed when the session closes.
func Example() {
	box, err := sandbox.New(sandbox.DefaultConfig(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer box.Close()
	r := calls.NewRouter(nil)
	if _, err := r.Sync("sandbox", box.Calls()); err != nil {
		log.Fatal(err)
	}
	sess := calls.NewSession("")
	defer sess.Close()
	res, err := r.Call(context.Background(), "sh", &calls.Request{
		Arguments: json.RawMessage(`{"cmd": "echo hello > greeting; cat greeting"}`),
		Session:   sess,
	})
	if err != nil {
		log.Fatal(err) // the call could not be made at all
	}
	// res.IsError is set for a non-zero exit, a timeout, or a sandbox that
	// cannot start; the text says which, and how to fix the last.
	st := res.Structured.(map[string]any)
	fmt.Printf("exit %v, stdout %q, isolation %s\n", st["exit_code"], st["stdout"], st["isolation"].(sandbox.Isolation).Mode)
}
