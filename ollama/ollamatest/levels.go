package ollamatest

import "fmt"

// LevelsAnswer is what [LevelsModel] answers at every level.
const LevelsAnswer = " Forty-two."

// LevelsReasoning is what [LevelsModel] reasons at a level: "low",
// "medium" (also think true) or "high".
func LevelsReasoning(level string) string {
	return fmt.Sprintf("Thinking at %s effort.", level)
}

// LevelsModel returns a model that takes think levels, as gpt-oss does: it
// is created with Ollama's harmony parser (Model.Parser), the only parser
// for which Ollama v0.17.4 accepts think "low", "medium" or "high" (any
// other model gets 400 `think value "low" is not supported for this
// model`), and which gives it the thinking capability. Its template picks a
// reply by .ThinkLevel, so each level reasons [LevelsReasoning] of that
// level in the harmony analysis channel, then answers [LevelsAnswer] in
// the final channel; think false answers with no reasoning. Ollama before
// the parser field (v0.6.5) reports no thinking and prints the harmony
// tags of the think-false reply as they are.
func LevelsModel() Model {
	const (
		analysis = "<|channel|>analysis<|message|>"
		// One token: llama.cpp ends generation at a token whose text is
		// "<|end|>" alone (it takes it for an end-of-turn token).
		endFinal = "<|end|><|start|>assistant<|channel|>final<|message|>"
	)
	used := map[string]bool{}
	for _, t := range baseVocab() {
		used[t.text] = true
	}
	marker := func(level string) string { return "<|membrane_level_" + level + "|>" }
	var b bigram
	longest := 0
	for _, level := range []string{"low", "medium", "high", "off"} {
		used[marker(level)] = true
		var words []string
		if level == "off" {
			// The harmony parser waits for a channel header: an answer
			// without one would never come out.
			words = append([]string{"<|channel|>final<|message|>"}, splitWords(LevelsAnswer)...)
		} else {
			words = append(append(append([]string{analysis}, splitWords(LevelsReasoning(level))...), endFinal), splitWords(LevelsAnswer)...)
		}
		pieces, err := uniquePieces(words, used, level)
		if err != nil {
			panic(err)
		}
		longest = max(longest, len(pieces))
		b.chain(marker(level), pieces)
	}
	l := b.llama("membrane-test-levels")
	tmpl := `{{- range .Messages }}{{ .Content }}{{ end }}` +
		`{{- if eq .ThinkLevel "low" }}` + marker("low") +
		`{{- else if eq .ThinkLevel "high" }}` + marker("high") +
		`{{- else if .Think }}` + marker("medium") +
		`{{- else }}` + marker("off") + `{{- end }}`
	return Model{
		File:       l.file(),
		Template:   tmpl,
		Parser:     "harmony",
		Parameters: map[string]any{"num_predict": longest + 8, "num_thread": 1},
	}
}
