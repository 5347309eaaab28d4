package policy_test

import (
	"testing"

	"github.com/membrane-mcp/membrane/calls/policy"
)

func TestSessionsFor(t *testing.T) {
	t.Parallel()
	set, err := policy.ParseTokens([]byte(`{"tokens":[
		{"name":"capped","token":"capped-token-0123456789","max_sessions":3},
		{"name":"free","token":"free-token-0123456789"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := policy.NewStore(set, "shared-token-0123456789")
	for user, want := range map[string]int{"capped": 3, "free": 0, "gone": 0, policy.SharedName: 0} {
		if got := s.SessionsFor(user); got != want {
			t.Errorf("SessionsFor(%q) = %d, want %d", user, got, want)
		}
	}
}
