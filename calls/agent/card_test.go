package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
)

func cardCall(group, name, desc string) calls.Call {
	return calls.Call{Name: name, Group: group, Description: desc, Kind: calls.KindTool,
		InputSchema: json.RawMessage(`{"type":"object"}`),
		Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) {
			return calls.Text("ok"), nil
		})}
}

func TestRenderCardGroupsAndSummaries(t *testing.T) {
	cs := []calls.Call{
		cardCall("sandbox", "sh", "Run a shell command in the session's workspace. Output is capped."),
		cardCall("ollama", "ollama_chat", "Chat with a local model."),
		cardCall("sandbox", "python_run", "Run Python 3 code.\nIt has no network."),
		cardCall("", "misc", ""),
	}
	want := "## Your tools\n" +
		"Call a tool by its name with JSON arguments that match its schema; use only these tools.\n" +
		"ollama:\n- ollama_chat: Chat with a local model.\n" +
		"other:\n- misc\n" +
		"sandbox:\n- python_run: Run Python 3 code.\n- sh: Run a shell command in the session's workspace."
	if got := agent.RenderCard(cs, nil); got != want {
		t.Fatalf("card =\n%s\nwant\n%s", got, want)
	}
	// The same calls in any order give the same card.
	for i := range 20 {
		r := rand.New(rand.NewPCG(uint64(i), 1))
		shuffled := append([]calls.Call(nil), cs...)
		r.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if got := agent.RenderCard(shuffled, nil); got != want {
			t.Fatalf("order %d changed the card:\n%s", i, got)
		}
	}
	if got := agent.RenderCard(nil, nil); got != "" {
		t.Fatalf("card of no calls = %q, want empty", got)
	}
	if got := agent.RenderCard(cs, &agent.CardOptions{Title: "Tools:"}); !strings.HasPrefix(got, "Tools:\n") {
		t.Fatalf("title not used: %q", got)
	}
}

// manyCalls is a tool set too large for the default budget, in three
// groups of different sizes.
func manyCalls() []calls.Call {
	var cs []calls.Call
	for i := range 60 {
		g := []string{"ollama", "sandbox", "docs"}[min(i%7, 2)]
		cs = append(cs, cardCall(g, fmt.Sprintf("tool_%02d", i), strings.Repeat(fmt.Sprintf("does thing %d ", i), 12)))
	}
	return cs
}

func TestRenderCardRespectsBudget(t *testing.T) {
	cs := manyCalls()
	full := agent.RenderCard(cs, &agent.CardOptions{MaxChars: -1})
	if !strings.Contains(full, "tool_59: does thing 59") {
		t.Fatalf("an unbounded card lacks a description:\n%s", full)
	}
	prevShown := -1
	for budget := 1; budget <= len(full)+10; budget += 23 {
		card := agent.RenderCard(cs, &agent.CardOptions{MaxChars: budget})
		if len(card) > budget {
			t.Fatalf("budget %d: card is %d bytes", budget, len(card))
		}
		shown := strings.Count(card, "\n- tool_")
		if shown < prevShown {
			t.Fatalf("budget %d shows %d tools, fewer than a smaller budget (%d)", budget, shown, prevShown)
		}
		prevShown = shown
		if shown > 0 && shown < len(cs) && !strings.Contains(card, " more)") {
			t.Fatalf("budget %d: %d of %d tools shown without saying more exist:\n%s", budget, shown, len(cs), card)
		}
	}
	if prevShown != len(cs) {
		t.Fatalf("the largest budget shows %d of %d tools", prevShown, len(cs))
	}
	// Tokens count as four bytes each; the default is DefaultCardChars.
	if card := agent.RenderCard(cs, &agent.CardOptions{MaxTokens: 100}); len(card) > 400 || len(card) < 200 {
		t.Fatalf("a 100-token card is %d bytes, want at most 400 and most of it used", len(card))
	}
	if card := agent.RenderCard(cs, nil); len(card) > agent.DefaultCardChars || len(card) < agent.DefaultCardChars/2 {
		t.Fatalf("the default card is %d bytes, want at most %d and most of it used", len(card), agent.DefaultCardChars)
	}
	// Cutting keeps every group on the card as long as it can.
	card := agent.RenderCard(cs, &agent.CardOptions{MaxChars: 600})
	for _, g := range []string{"docs:", "ollama:", "sandbox:"} {
		if !strings.Contains(card, g) {
			t.Fatalf("a 600-byte card lost group %s:\n%s", g, card)
		}
	}
}

func TestRenderCardCutsOnRunes(t *testing.T) {
	cs := []calls.Call{cardCall("x", "t", strings.Repeat("ü", 200))}
	for budget := 1; budget < 400; budget++ {
		card := agent.RenderCard(cs, &agent.CardOptions{MaxChars: budget})
		if len(card) > budget || !json.Valid(mustJSON(t, card)) || strings.ContainsRune(card, '\uFFFD') {
			t.Fatalf("budget %d: card %q", budget, card)
		}
	}
}

func mustJSON(t *testing.T, s string) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCardFollowsTheRouter(t *testing.T) {
	r := calls.NewRouter(nil)
	add(t, r, cardCall("sandbox", "sh", "Run a shell command."))
	card := agent.NewCard(r, nil)
	defer card.Close()
	first := card.String()
	if !strings.Contains(first, "- sh: Run a shell command.") {
		t.Fatalf("card = %q", first)
	}
	v := card.Version()
	if card.String() != first || card.Version() != v {
		t.Fatal("the card changed without a change of the router")
	}
	add(t, r, cardCall("sandbox", "python_run", "Run Python."))
	if got := card.String(); !strings.Contains(got, "- python_run: Run Python.") || card.Version() == v {
		t.Fatalf("after an add, card = %q (version %d, was %d)", got, card.Version(), v)
	}
	if _, err := r.Sync("sandbox", []calls.Call{cardCall("sandbox", "sh", "Run a POSIX shell command.")}); err != nil {
		t.Fatal(err)
	}
	got := card.String()
	if strings.Contains(got, "python_run") || !strings.Contains(got, "Run a POSIX shell command.") {
		t.Fatalf("after a sync, card = %q", got)
	}
	if only := card.For(func(c calls.Call) bool { return c.Name != "sh" }); only != "" {
		t.Fatalf("a filter that hides every call gives %q", only)
	}
	card.Close()
	add(t, r, cardCall("sandbox", "late", "Added after Close."))
	if strings.Contains(card.String(), "late") {
		t.Fatal("a closed card still follows the router")
	}
}

func TestCardAuto(t *testing.T) {
	for _, c := range []struct {
		model, url string
		want       bool
	}{
		{"qwen2.5:7b", "https://api.example.com/v1", true},
		{"qwen3:0.6b", "", true},
		{"llama3.2:3b-instruct-q4_K_M", "http://gpu:11434/v1", true},
		{"llama3.1:70b", "http://127.0.0.1:11434/v1", false},
		{"qwen2.5-coder:32B", "http://localhost:11434/v1", false},
		{"gpt-4o-mini", "https://api.openai.com/v1", true},
		{"gpt-4o", "https://api.openai.com/v1", false},
		{"scripted", "http://127.0.0.1:40000/v1", true},
		{"scripted", "http://[::1]:40000/v1", true},
		{"scripted", "http://10.0.0.5:11434/v1", false},
		{"scripted", "http://127.0.0.1.example.com/v1", false},
	} {
		if got := agent.CardAuto(c.model, c.url); got != c.want {
			t.Errorf("CardAuto(%q, %q) = %v, want %v", c.model, c.url, got, c.want)
		}
	}
}

// The card is part of every step's system prompt, and a step after the
// tool set changed sees the new set.
func TestCapabilitiesRefreshEachStep(t *testing.T) {
	r := calls.NewRouter(nil)
	add(t, r, tool("grow", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		if err := r.Add(cardCall("late", "newcomer", "Appears mid-turn.")); err != nil {
			return nil, err
		}
		return calls.Text("grown"), nil
	}))
	card := agent.NewCard(r, nil)
	defer card.Close()
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){
		callTools(agent.ToolCall{Name: "grow", Arguments: `{}`}), answer("done"),
	}}
	a := agent.New(m, r, &agent.Options{System: "Be brief.", Capabilities: card.String})
	if _, err := a.Ask(t.Context(), "go"); err != nil {
		t.Fatal(err)
	}
	reqs := m.requests()
	sys := func(i int) string {
		if reqs[i].Messages[0].Role != agent.RoleSystem {
			t.Fatalf("step %d has no system message", i+1)
		}
		return reqs[i].Messages[0].Content
	}
	if s := sys(0); !strings.HasPrefix(s, "Be brief.\n\n## Your tools\n") || strings.Contains(s, "newcomer") {
		t.Fatalf("step 1 system = %q", s)
	}
	if s := sys(1); !strings.Contains(s, "- newcomer: Appears mid-turn.") {
		t.Fatalf("step 2 system = %q", s)
	}
	// No card and no system prompt: no system message at all (control).
	m2 := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){answer("x")}}
	if _, err := agent.New(m2, r, &agent.Options{Capabilities: func() string { return "" }}).Ask(t.Context(), "go"); err != nil {
		t.Fatal(err)
	}
	if got := m2.requests()[0].Messages[0].Role; got != agent.RoleUser {
		t.Fatalf("an empty card made a %s message", got)
	}
}
