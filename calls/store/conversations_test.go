package store

import (
	"fmt"
	"testing"
	"time"
)

func TestConversations(t *testing.T) {
	s, _ := openTemp(t, nil)
	ctx := t.Context()
	if h, err := s.LoadConversation(ctx, "a", "coder", "c1"); err != nil || h != nil {
		t.Fatalf("unknown conversation: %q, %v", h, err)
	}
	if err := s.SaveConversation(ctx, "a", "coder", "c1", []byte(`[1]`), time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.LoadConversation(ctx, "a", "coder", "c1"); string(h) != `[1]` {
		t.Errorf("load after save: %q", h)
	}
	// Another owner, or another agent, does not see it.
	for _, k := range [][2]string{{"b", "coder"}, {"a", "other"}} {
		if h, _ := s.LoadConversation(ctx, k[0], k[1], "c1"); h != nil {
			t.Errorf("%v sees %q", k, h)
		}
	}
	// A save replaces the history.
	s.SaveConversation(ctx, "a", "coder", "c1", []byte(`[1,2]`), time.Hour, 0)
	if h, _ := s.LoadConversation(ctx, "a", "coder", "c1"); string(h) != `[1,2]` {
		t.Errorf("after a second save: %q", h)
	}
	// An expired conversation is gone.
	s.SaveConversation(ctx, "a", "coder", "old", []byte(`[0]`), -time.Second, 0)
	if h, _ := s.LoadConversation(ctx, "a", "coder", "old"); h != nil {
		t.Errorf("an expired conversation: %q", h)
	}
}

func TestConversationsBounded(t *testing.T) {
	s, _ := openTemp(t, nil)
	ctx := t.Context()
	for i := range 5 {
		if err := s.SaveConversation(ctx, "a", "coder", fmt.Sprint(i), []byte(`[]`), time.Hour, 3); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	s.db.QueryRow(`SELECT count(*) FROM conversations`).Scan(&n)
	if n != 3 {
		t.Errorf("%d conversations kept, want the bound, 3", n)
	}
	// The newest are the ones kept.
	for i, want := range []bool{false, false, true, true, true} {
		h, _ := s.LoadConversation(ctx, "a", "coder", fmt.Sprint(i))
		if (h != nil) != want {
			t.Errorf("conversation %d kept = %v, want %v", i, h != nil, want)
		}
	}
}
