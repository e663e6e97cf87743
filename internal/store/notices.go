package store

import (
	"context"
	"fmt"
)

// StartNotice records the intent to post a keyed notice before posting,
// and returns what was recorded before, as StartSlackPost does for cards.
func (s *Store) StartNotice(ctx context.Context, key, channel string) (SlackPost, error) {
	var before SlackPost
	var inserted bool
	err := s.pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO slack_notices (key, channel) VALUES ($1, $2)
			ON CONFLICT (key) DO NOTHING RETURNING true
		)
		SELECT COALESCE((SELECT true FROM ins), false)`, key, channel).Scan(&inserted)
	if err != nil {
		return SlackPost{}, fmt.Errorf("store: start notice: %w", err)
	}
	if inserted {
		return before, nil
	}
	err = s.pool.QueryRow(ctx, `SELECT channel, ts, started_at FROM slack_notices WHERE key = $1`, key).
		Scan(&before.Channel, &before.TS, &before.StartedAt)
	if err != nil {
		return SlackPost{}, fmt.Errorf("store: start notice: %w", err)
	}
	return before, nil
}

// SetNoticeTS records that a keyed notice was posted.
func (s *Store) SetNoticeTS(ctx context.Context, key, ts string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE slack_notices SET ts = $2 WHERE key = $1`, key, ts); err != nil {
		return fmt.Errorf("store: set notice: %w", err)
	}
	return nil
}
