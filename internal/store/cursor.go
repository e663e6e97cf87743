package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Cursor returns where the named poll has read up to (epoch ms), 0 if it
// has never run.
func (s *Store) Cursor(ctx context.Context, name string) (int64, error) {
	var ms int64
	err := s.pool.QueryRow(ctx, `SELECT after_ms FROM poll_cursors WHERE name = $1`, name).Scan(&ms)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: read cursor: %w", err)
	}
	return ms, nil
}

// AdvanceCursor moves the named cursor forward to ms. It never moves it
// back, so a late or repeated call cannot make the poll skip messages
// twice or re-read ones it already started.
func (s *Store) AdvanceCursor(ctx context.Context, name string, ms int64) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO poll_cursors (name, after_ms) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE
		SET after_ms = GREATEST(poll_cursors.after_ms, EXCLUDED.after_ms), updated_at = now()`, name, ms)
	if err != nil {
		return fmt.Errorf("store: advance cursor: %w", err)
	}
	return nil
}

// SetCursor sets a named value, forward or back: for the watcher's own
// bookkeeping (its budget and mode), not for message cursors.
func (s *Store) SetCursor(ctx context.Context, name string, v int64) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO poll_cursors (name, after_ms) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET after_ms = EXCLUDED.after_ms, updated_at = now()`, name, v)
	if err != nil {
		return fmt.Errorf("store: set %s: %w", name, err)
	}
	return nil
}
