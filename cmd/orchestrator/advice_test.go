package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
)

// An endpoint error gets the flag that fixes it; any other error is left
// as it is.
func TestModelAdvice(t *testing.T) {
	t.Parallel()
	c := openaicompat.New(&openaicompat.Options{BaseURL: "http://127.0.0.1:1/v1"})
	_, err := c.Complete(t.Context(), &agent.Request{}, nil)
	var e *openaicompat.Error
	if !errors.As(err, &e) || e.Code != openaicompat.CodeNoModel {
		t.Fatalf("no model: %v (%T)", err, err)
	}
	got := modelAdvice(err)
	if !strings.Contains(got.Error(), "--model") || !errors.Is(got, err) {
		t.Errorf("advice %q does not name --model or lost the error", got)
	}
	plain := errors.New("runner crashed")
	if modelAdvice(plain) != plain {
		t.Errorf("a plain error changed: %v", modelAdvice(plain))
	}
	if modelAdvice(nil) != nil {
		t.Error("nil changed")
	}
}

// The reasoning refusals name the setting that fixes them.
func TestModelAdviceReasoning(t *testing.T) {
	t.Parallel()
	for _, code := range []openaicompat.Code{openaicompat.CodeThinkLevelUnsupported, openaicompat.CodeNoThinking} {
		err := &openaicompat.Error{Code: code}
		if got := modelAdvice(err); !strings.Contains(got.Error(), "--reasoning-effort") || !errors.Is(got, err) {
			t.Errorf("code %d: advice %q does not name --reasoning-effort or lost the error", code, got)
		}
	}
}
