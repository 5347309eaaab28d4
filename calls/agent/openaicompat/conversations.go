package openaicompat

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/store"
)

// StoreConversations keeps conversations in the trace store, as JSON, for
// ServerOptions.Conversations.
type StoreConversations struct {
	Store *store.Store
	// TTL is how long a conversation is kept after its last turn. Zero
	// means DefaultConversationTTL.
	TTL time.Duration
	// Max is how many conversations are kept. Zero means
	// store.DefaultMaxConversations.
	Max int
}

// DefaultConversationTTL is StoreConversations' TTL when it is zero.
const DefaultConversationTTL = 24 * time.Hour

var _ Conversations = (*StoreConversations)(nil)

// Load implements Conversations.
func (c *StoreConversations) Load(ctx context.Context, owner, agentName, id string) ([]agent.Message, error) {
	b, err := c.Store.LoadConversation(ctx, owner, agentName, id)
	if err != nil || b == nil {
		return nil, err
	}
	var msgs []agent.Message
	if err := json.Unmarshal(b, &msgs); err != nil {
		return nil, fmt.Errorf("conversation %s: %w", id, err)
	}
	return msgs, nil
}

// Save implements Conversations.
func (c *StoreConversations) Save(ctx context.Context, owner, agentName, id string, msgs []agent.Message) error {
	b, err := json.Marshal(msgs)
	if err != nil {
		return err
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultConversationTTL
	}
	return c.Store.SaveConversation(ctx, owner, agentName, id, b, ttl, c.Max)
}
