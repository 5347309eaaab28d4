package policy

import (
	"encoding/json"
	"testing"
)

// FuzzParseTokens checks the tokens-file decoder against a round trip:
// whatever it accepts, every plain token in the file resolves to the entry
// that holds it, and names are unique; anything else is an error, never a
// panic.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte(`{"tokens":[{"name":"a","token":"0123456789abcdef","tools":["ollama_*"],"rate_limits":[{"per_minute":6,"burst":2}]}]}`))
	f.Add([]byte(`{"tokens":[{"name":"h","token":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}]}`))
	f.Add([]byte(`{"tokens":[{"name":"a","token":"0123456789abcdef"},{"name":"b","token":"0123456789abcdeg","exclude_tools":["sh"],"concurrency":2}]}`))
	f.Add([]byte(`{"tokens":[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseTokens(data)
		if err != nil {
			return
		}
		var raw struct {
			Tokens []TokenConfig `json:"tokens"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatalf("accepted a file encoding/json rejects: %v", err)
		}
		if len(set.Names()) != len(raw.Tokens) || len(raw.Tokens) == 0 {
			t.Fatalf("%d principals from %d entries", len(set.Names()), len(raw.Tokens))
		}
		seen := map[string]bool{}
		for _, tc := range raw.Tokens {
			if seen[tc.Name] {
				t.Fatalf("name %q accepted twice", tc.Name)
			}
			seen[tc.Name] = true
			if len(tc.Token) >= 7 && tc.Token[:7] == "sha256:" {
				continue
			}
			p, ok := set.Lookup(tc.Token)
			if !ok || p.Name != tc.Name {
				t.Fatalf("token of %q resolves to %v", tc.Name, p)
			}
			for _, l := range p.Limits {
				if !(l.PerMinute > 0) || l.Burst < 1 {
					t.Fatalf("limit %+v accepted", l)
				}
			}
		}
	})
}
