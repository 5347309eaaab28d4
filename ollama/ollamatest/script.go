package ollamatest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ToolCall is one tool call a scripted model makes.
type ToolCall struct {
	// Name is the tool's name, as the client declared it.
	Name string
	// Args is the call's arguments, a JSON object. Empty means {}.
	Args string
}

// Script is what a [ScriptedModel] says. While the conversation does not
// end with a tool message, it makes Calls, all in one assistant turn (more
// than one is a parallel call); once the tool messages come back, it makes
// the next turn of Then, if any, and after the last turn's results it
// answers Answer. The zero Script is [DefaultScript].
type Script struct {
	// Calls are the tool calls of the first calling turn. None means the
	// model always answers.
	Calls []ToolCall
	// Then are further calling turns, each made after the tool results of
	// the turn before: a multi-step exchange. Turns are counted from the
	// last user message.
	Then [][]ToolCall
	// Answer is the final answer, after tool results. It is emitted as a
	// few tokens (one per word, where words repeat they are merged), so a
	// streaming client sees several chunks.
	Answer string
	// Loop makes the model make Calls again instead of answering, forever:
	// a model for step-limit tests. It cannot be combined with Then.
	Loop bool
	// Reasoning, when set, makes a thinking model: every reply (each
	// calling turn and the answer) starts with <think>Reasoning</think>
	// while the request has thinking on. The template renders past
	// reasoning with .Thinking inside the range over .Messages, which is
	// how Ollama v0.9 and later infer the thinking capability and the tags
	// it parses into message.thinking; with think false the replies come
	// without it. Ollama before v0.9 (v0.6.5) never thinks: the template's
	// .Think is unset there.
	Reasoning string
}

// DefaultScript calls sh with {"cmd":"echo hello"}, then answers
// " The command printed hello.".
func DefaultScript() Script {
	return Script{
		Calls:  []ToolCall{{Name: "sh", Args: `{"cmd":"echo hello"}`}},
		Answer: " The command printed hello.",
	}
}

func (s Script) isZero() bool {
	return len(s.Calls) == 0 && len(s.Then) == 0 && s.Answer == "" && !s.Loop && s.Reasoning == ""
}

// Validate reports why s cannot be scripted: an empty tool name, arguments
// that are not a JSON object, an empty turn in Then, Then without Calls,
// Loop without Calls or with Then, or an answer that is a reserved token.
func (s Script) Validate() error {
	_, err := s.plan()
	return err
}

// Markers end the prompt: the template picks one, and the weights make the
// rest of the reply follow from it.
const (
	markCall   = "<|membrane_call|>"
	markAnswer = "<|membrane_answer|>"
	openCall   = "<tool_call>"
	closeCall  = "</tool_call>"
	openThink  = "<think>"
	closeThink = "</think>"
)

// plan is a script compiled to token chains.
type plan struct {
	turns  [][]string // calling turn i follows callMarker(i); turn 0 is wrapped in <tool_call>…</tool_call>
	answer []string   // the answering turn, after markAnswer
	// thinkTurns and thinkAnswer are the same replies led by the
	// reasoning, after thinkMarker; empty without Script.Reasoning.
	thinkTurns  [][]string
	thinkAnswer []string
}

// thinkMarker is the marker of a reply with reasoning: calling turn i, or
// the answer for i = -1.
func thinkMarker(i int) string {
	if i < 0 {
		return "<|membrane_think_answer|>"
	}
	return fmt.Sprintf("<|membrane_think_%d|>", i)
}

// callMarker is the marker that starts calling turn i.
func callMarker(i int) string {
	if i == 0 {
		return markCall
	}
	return fmt.Sprintf("<|membrane_call_%d|>", i)
}

func (s Script) plan() (plan, error) {
	if s.isZero() {
		s = DefaultScript()
	}
	switch {
	case s.Loop && len(s.Calls) == 0:
		return plan{}, errors.New("ollamatest: script: Loop needs at least one call")
	case s.Loop && len(s.Then) > 0:
		return plan{}, errors.New("ollamatest: script: Loop cannot be combined with Then")
	case len(s.Then) > 0 && len(s.Calls) == 0:
		return plan{}, errors.New("ollamatest: script: Then needs Calls, the first turn")
	}
	used := map[string]bool{markAnswer: true, openCall: true, closeCall: true, thinkMarker(-1): true}
	for i := range 1 + len(s.Then) {
		used[callMarker(i)] = true
		used[thinkMarker(i)] = true
	}
	for _, t := range baseVocab() {
		used[t.text] = true
	}
	var p plan
	turns := s.Then
	if len(s.Calls) > 0 {
		turns = append([][]ToolCall{s.Calls}, s.Then...)
	}
	for ti, turn := range turns {
		if len(turn) == 0 {
			return plan{}, fmt.Errorf("ollamatest: script: turn %d has no calls", ti)
		}
		var pieces []string
		for i, c := range turn {
			if c.Name == "" {
				return plan{}, fmt.Errorf("ollamatest: script: turn %d call %d has no tool name", ti, i)
			}
			args := c.Args
			if strings.TrimSpace(args) == "" {
				args = "{}"
			}
			var obj map[string]any
			if err := json.Unmarshal([]byte(args), &obj); err != nil || obj == nil {
				return plan{}, fmt.Errorf("ollamatest: script: turn %d call %d (%s): Args must be a JSON object, got %q", ti, i, c.Name, c.Args)
			}
			var compact bytes.Buffer
			_ = json.Compact(&compact, []byte(args))
			name, _ := json.Marshal(c.Name)
			piece := fmt.Sprintf(`{"name": %s, "arguments": %s}`, name, compact.String())
			// Each token may appear once in a chain; a repeated call gets
			// leading spaces, which the JSON parser skips.
			for used[piece] {
				piece = " " + piece
			}
			used[piece] = true
			pieces = append(pieces, piece)
		}
		if ti == 0 {
			pieces = append(append([]string{openCall}, pieces...), closeCall)
		}
		p.turns = append(p.turns, pieces)
	}
	var err error
	if p.answer, err = answerPieces(s.Answer, used); err != nil {
		return plan{}, err
	}
	if s.Reasoning == "" {
		return p, nil
	}
	words := splitWords(s.Reasoning)
	think := func(reply []string) ([]string, error) {
		pieces := append(append(append([]string{openThink}, words...), closeThink), reply...)
		return uniquePieces(pieces, used, s.Reasoning)
	}
	for _, t := range p.turns {
		tt, err := think(t)
		if err != nil {
			return plan{}, err
		}
		p.thinkTurns = append(p.thinkTurns, tt)
	}
	if p.thinkAnswer, err = think(p.answer); err != nil {
		return plan{}, err
	}
	return p, nil
}

// answerPieces splits answer into word tokens (each word keeps the space
// before it), merging a word into the next while it would repeat a token.
func answerPieces(answer string, used map[string]bool) ([]string, error) {
	return uniquePieces(splitWords(answer), used, answer)
}

// splitWords splits s before each run of spaces that follows a non-space.
func splitWords(answer string) []string {
	var words []string
	start, prevSpace := 0, true
	for i, r := range answer {
		space := unicode.IsSpace(r)
		if space && !prevSpace {
			words = append(words, answer[start:i])
			start = i
		}
		prevSpace = space
	}
	if start < len(answer) {
		words = append(words, answer[start:])
	}
	return words
}

// uniquePieces makes each of words a token not in used (marking it used),
// merging a word into the next while it would repeat one, and the tail
// backwards; what names the text in the error.
func uniquePieces(words []string, used map[string]bool, what string) ([]string, error) {
	var pieces []string
	cur := ""
	for _, w := range words {
		cur += w
		if !used[cur] {
			used[cur] = true
			pieces = append(pieces, cur)
			cur = ""
		}
	}
	// The tail repeats earlier pieces: merge it backwards until it is new.
	for cur != "" {
		if len(pieces) == 0 {
			return nil, fmt.Errorf("ollamatest: script: answer %q is a reserved token", what)
		}
		last := pieces[len(pieces)-1]
		pieces = pieces[:len(pieces)-1]
		delete(used, last)
		cur = last + cur
		if !used[cur] {
			used[cur] = true
			pieces = append(pieces, cur)
			cur = ""
		}
	}
	return pieces, nil
}

// scriptTemplate renders past tool calls the way the model writes them (so
// Ollama learns how to parse its output into tool calls) and ends the prompt
// with a marker. $step counts the calling turns since the last user message;
// after a tool message the marker of the next turn, or the answer marker,
// ends the prompt, and otherwise the first turn's. Mentioning .Tools makes
// Ollama report the tools capability.
func scriptTemplate(s Script, p plan) string {
	// mark is the marker of reply i (-1: the answer), led by the reasoning
	// when the request thinks.
	mark := func(i int) string {
		plain := markAnswer
		if i >= 0 {
			plain = callMarker(i)
		}
		if s.Reasoning == "" {
			return plain
		}
		return `{{ if $.Think }}` + thinkMarker(i) + `{{ else }}` + plain + `{{ end }}`
	}
	var b strings.Builder
	b.WriteString(`{{- if .Tools }}{{ end }}{{- $last := "" }}{{- $step := "0" }}{{- range .Messages }}{{ $last = .Role }}`)
	b.WriteString(`{{- if eq .Role "user" }}{{ $step = "0" }}{{ end }}`)
	if s.Reasoning != "" {
		// Only where the server has thinking: an older one has no .Think,
		// and its messages no .Thinking field.
		b.WriteString(`{{- if $.Think }}{{ if .Thinking }}` + openThink + `{{ .Thinking }}` + closeThink + `{{ end }}{{ end }}`)
	}
	b.WriteString(`{{- if .ToolCalls }}` + openCall + `{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}{{ end }}` + closeCall)
	for i := range p.turns {
		if i == 0 {
			b.WriteString(`{{- if `)
		} else {
			b.WriteString(`{{- else if `)
		}
		fmt.Fprintf(&b, `eq $step "%d" }}{{ $step = "%d" }}`, i, i+1)
	}
	if len(p.turns) > 0 {
		b.WriteString(`{{- end }}`)
	}
	b.WriteString(`{{- end }}{{- end }}`)
	switch {
	case len(p.turns) == 0:
		b.WriteString(mark(-1))
	case s.Loop:
		b.WriteString(mark(0))
	default:
		b.WriteString(`{{- if ne $last "tool" }}` + mark(0))
		for i := 1; i < len(p.turns); i++ {
			fmt.Fprintf(&b, `{{- else if eq $step "%d" }}%s`, i, mark(i))
		}
		b.WriteString(`{{- else }}` + mark(-1) + `{{- end }}`)
	}
	return b.String()
}

// ScriptedModel returns a model that follows s exactly, at any temperature.
// It panics if s is invalid (see [Script.Validate]).
//
// How: the network is a bigram machine. n_embd equals the vocabulary size,
// the token embedding is the identity, every attention and feed-forward
// weight is zero (so each position's residual stream is its own token's
// one-hot vector) and output row j is 10·e_i for each token i that j must
// follow. The next token therefore depends only on the current one, and the
// template's final marker picks the chain. /api/show reports
// [completion tools], and on Ollama v0.9 and later [completion tools
// thinking] when the script has Reasoning.
func ScriptedModel(s Script) Model {
	if s.isZero() {
		s = DefaultScript()
	}
	p, err := s.plan()
	if err != nil {
		panic(err)
	}
	var b bigram
	for i, turn := range p.turns {
		b.chain(callMarker(i), turn)
	}
	for i, turn := range p.thinkTurns {
		b.chain(thinkMarker(i), turn)
	}
	if !s.Loop || len(p.turns) == 0 {
		b.chain(markAnswer, p.answer)
		if p.thinkAnswer != nil {
			b.chain(thinkMarker(-1), p.thinkAnswer)
		}
	}
	l := b.llama("membrane-test-scripted")
	return Model{
		File:     l.file(),
		Template: scriptTemplate(s, p),
		// The logits make sampling follow the script at any temperature;
		// num_predict only bounds a reply if something else goes wrong.
		Parameters: map[string]any{"num_predict": maxLen(p) + 8, "num_thread": 1},
	}
}

// maxLen is the number of tokens of the longest reply of p.
func maxLen(p plan) int {
	n := max(len(p.answer), len(p.thinkAnswer))
	for _, t := range append(p.turns, p.thinkTurns...) {
		n = max(n, len(t))
	}
	return n
}

// bigram builds the vocabulary and weights of a scripted model: chains of
// tokens, each started by a control marker the template ends the prompt
// with, and ended by </s>.
type bigram struct {
	vocab []token
	id    map[string]int
	next  map[int]int // token → the token that follows it
}

func (b *bigram) add(text string, typ int32) int {
	if b.vocab == nil {
		b.vocab, b.id, b.next = baseVocab(), map[string]int{}, map[int]int{}
	}
	if i, ok := b.id[text]; ok {
		return i
	}
	b.id[text] = len(b.vocab)
	b.vocab = append(b.vocab, token{text, typ})
	return b.id[text]
}

// chain makes marker be followed by pieces (user-defined tokens, printed
// verbatim), then </s>. Each piece must be new to b.
func (b *bigram) chain(marker string, pieces []string) {
	prev := b.add(marker, tokControl)
	for _, piece := range pieces {
		i := b.add(piece, tokUserDefined)
		b.next[prev] = i
		prev = i
	}
	b.next[prev] = tokEOS
}

// llama is the network of b: n_embd equals the vocabulary size (padded to
// a multiple of 8, which keeps heads and rope happy), the embedding is the
// identity, output row j is 10·e_i for each i followed by j, and every
// other matrix is zero.
func (b *bigram) llama(name string) llama {
	for len(b.vocab)%8 != 0 {
		b.add(fmt.Sprintf("<|membrane_pad_%d|>", len(b.vocab)), tokControl)
	}
	n := len(b.vocab)
	return llama{
		name: name, vocab: b.vocab, embd: n, ff: 8, heads: 1, layers: 1, ctx: 2048,
		weight: func(name string, dims []uint64) []float32 {
			d := make([]float32, dims[0]*dims[1])
			switch name {
			case "token_embd.weight": // row i = e_i
				for i := range n {
					d[i*n+i] = 1
				}
			case "output.weight": // row j = 10·e_i for each i followed by j
				for i, j := range b.next {
					d[j*n+i] = 10
				}
			}
			return d // every other matrix: zero
		},
	}
}
