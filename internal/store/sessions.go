package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PutSession saves a sealed web session under its id (kept hashed), and
// sweeps sessions that ended more than a day ago.
func (s *Store) PutSession(ctx context.Context, id string, sealed []byte, lastSeen, expires time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (id_hash, sealed, last_seen, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id_hash) DO UPDATE SET sealed = EXCLUDED.sealed, last_seen = EXCLUDED.last_seen, expires_at = EXCLUDED.expires_at`,
		hashState(id), sealed, lastSeen, expires)
	if err != nil {
		return fmt.Errorf("store: put session: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < now() - interval '1 day'`); err != nil {
		return fmt.Errorf("store: sweep sessions: %w", err)
	}
	return nil
}

// GetSession reads a session and when it was last used; nil, and no
// error, when it is unknown (never made, signed out, or ended by an admin).
func (s *Store) GetSession(ctx context.Context, id string) ([]byte, time.Time, error) {
	var sealed []byte
	var seen time.Time
	err := s.pool.QueryRow(ctx, `SELECT sealed, last_seen FROM sessions WHERE id_hash = $1`, hashState(id)).Scan(&sealed, &seen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("store: get session: %w", err)
	}
	return sealed, seen, nil
}

// TouchSession records that a session was used at.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen = $2 WHERE id_hash = $1 AND last_seen < $2`, hashState(id), at)
	if err != nil {
		return fmt.Errorf("store: touch session: %w", err)
	}
	return nil
}

// DeleteSession ends one session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, hashState(id)); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// DeleteAllSessions ends every session and says how many there were.
func (s *Store) DeleteAllSessions(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions`)
	if err != nil {
		return 0, fmt.Errorf("store: delete sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
