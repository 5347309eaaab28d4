package openaicompat

import (
	"encoding/json"
	"testing"

	"github.com/openai/openai-go/v3"
)

// FuzzToolCallPieces checks the assembler's property: two calls whose
// arguments are cut at any points and whose pieces interleave by index
// (the id and name in each call's first delta only) come out whole, in
// order of their first delta.
func FuzzToolCallPieces(f *testing.F) {
	f.Add(`{"cmd":"echo \"hi\""}`, `{"code":"print(1)"}`, uint8(3), uint8(7), uint8(0b1010))
	f.Add(`{}`, `{"a":[1,2,{"b":"}"}]}`, uint8(0), uint8(1), uint8(0xff))
	f.Add(`{"s":"é日本"}`, `{"x":null}`, uint8(5), uint8(2), uint8(0))
	f.Fuzz(func(t *testing.T, a, b string, cutA, cutB, order uint8) {
		pieces := func(s string, n uint8) []string {
			step := int(n%8) + 1
			var out []string
			for i := 0; i < len(s); i += step {
				out = append(out, s[i:min(i+step, len(s))])
			}
			return out
		}
		pa, pb := pieces(a, cutA), pieces(b, cutB)
		first := func(index int64, id, name string) openai.ChatCompletionChunkChoiceDeltaToolCall {
			d := openai.ChatCompletionChunkChoiceDeltaToolCall{Index: index, ID: id}
			d.Function.Name = name
			return d
		}
		piece := func(index int64, args string) openai.ChatCompletionChunkChoiceDeltaToolCall {
			d := openai.ChatCompletionChunkChoiceDeltaToolCall{Index: index}
			d.Function.Arguments = args
			return d
		}
		var tc toolCalls
		tc.add([]openai.ChatCompletionChunkChoiceDeltaToolCall{first(0, "call_a", "sh")})
		tc.add([]openai.ChatCompletionChunkChoiceDeltaToolCall{first(1, "call_b", "python_run")})
		for i, j, k := 0, 0, 0; i < len(pa) || j < len(pb); k++ {
			if i < len(pa) && (j >= len(pb) || order>>(k%8)&1 == 0) {
				tc.add([]openai.ChatCompletionChunkChoiceDeltaToolCall{piece(0, pa[i])})
				i++
			} else {
				tc.add([]openai.ChatCompletionChunkChoiceDeltaToolCall{piece(1, pb[j])})
				j++
			}
		}
		got := tc.done()
		if len(got) != 2 || got[0].ID != "call_a" || got[0].Name != "sh" || got[0].Arguments != a ||
			got[1].ID != "call_b" || got[1].Name != "python_run" || got[1].Arguments != b {
			t.Fatalf("assembled %+v from %q and %q", got, pa, pb)
		}
		if json.Valid([]byte(a)) && !json.Valid([]byte(got[0].Arguments)) {
			t.Fatalf("valid arguments %q came out invalid: %q", a, got[0].Arguments)
		}
	})
}
