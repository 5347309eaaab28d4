package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DefaultMaxConversations bounds the conversations kept at once when
// SaveConversation is given no bound.
const DefaultMaxConversations = 10000

// LoadConversation returns the history kept for a conversation, or nil
// when there is none or it has expired.
func (s *Store) LoadConversation(ctx context.Context, owner, agent, id string) ([]byte, error) {
	var h string
	err := s.db.QueryRowContext(ctx, `SELECT history FROM conversations WHERE owner = ? AND agent = ? AND id = ? AND expires_at > ?`,
		owner, agent, id, time.Now().UnixMicro()).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: load conversation: %w", err)
	}
	return []byte(h), nil
}

// SaveConversation keeps history for a conversation until ttl has passed
// without another save, and drops expired conversations, then the least
// recently saved ones past max (zero means DefaultMaxConversations). The
// write is committed before it returns, so the next load sees it.
func (s *Store) SaveConversation(ctx context.Context, owner, agent, id string, history []byte, ttl time.Duration, max int) error {
	if max <= 0 {
		max = DefaultMaxConversations
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.exec(ctx, `INSERT OR REPLACE INTO conversations(owner, agent, id, updated_at, expires_at, history) VALUES(?, ?, ?, ?, ?, ?)`,
		owner, agent, id, now.UnixMicro(), now.Add(ttl).UnixMicro(), string(history))
	if err == nil {
		err = s.exec(ctx, `DELETE FROM conversations WHERE expires_at <= ?`, now.UnixMicro())
	}
	if err == nil {
		err = s.exec(ctx, `DELETE FROM conversations WHERE rowid IN (SELECT rowid FROM conversations ORDER BY updated_at DESC LIMIT -1 OFFSET ?)`, max)
	}
	if err == nil {
		err = s.commit()
	}
	s.record(err)
	if err != nil {
		return fmt.Errorf("store: save conversation: %w", err)
	}
	return nil
}
