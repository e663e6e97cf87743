package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reasons an OAuth callback's state is refused.
var (
	ErrStateUnknown = errors.New("store: OAuth state unknown or already used")
	ErrStateExpired = errors.New("store: OAuth state expired")
)

func hashState(state string) []byte {
	h := sha256.Sum256([]byte(state))
	return h[:]
}

// NewOAuthState makes a fresh random state for clientID that is good once,
// for ttl. Only its hash is stored.
func (s *Store) NewOAuthState(ctx context.Context, clientID string, ttl time.Duration) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	state := base64.RawURLEncoding.EncodeToString(b)
	_, err := s.pool.Exec(ctx, `
		INSERT INTO oauth_states (state_hash, client_id, expires_at) VALUES ($1, $2, now() + $3::interval)`,
		hashState(state), clientID, fmt.Sprintf("%d milliseconds", ttl.Milliseconds()))
	if err != nil {
		return "", fmt.Errorf("store: new OAuth state: %w", err)
	}
	// Expired states are of no use to anyone: sweep them as new ones come.
	_, _ = s.pool.Exec(ctx, `DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'`)
	return state, nil
}

// ConsumeOAuthState spends a state and returns the client it was made for.
// A second call with the same state fails, so a replayed callback is
// refused.
func (s *Store) ConsumeOAuthState(ctx context.Context, state string) (string, error) {
	var clientID string
	var live bool
	err := s.pool.QueryRow(ctx, `
		DELETE FROM oauth_states WHERE state_hash = $1 RETURNING client_id, expires_at > now()`,
		hashState(state)).Scan(&clientID, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrStateUnknown
	}
	if err != nil {
		return "", fmt.Errorf("store: consume OAuth state: %w", err)
	}
	if !live {
		return "", ErrStateExpired
	}
	return clientID, nil
}
