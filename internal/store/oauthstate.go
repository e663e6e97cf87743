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

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func interval(d time.Duration) string { return fmt.Sprintf("%d milliseconds", d.Milliseconds()) }

// NewOAuthState makes a fresh random state for clientID that is good once,
// for ttl, remembering how the grant was started. Only its hash is stored.
func (s *Store) NewOAuthState(ctx context.Context, clientID, startedBy string, ttl time.Duration) (string, error) {
	state, err := randomToken()
	if err != nil {
		return "", err
	}
	if err := s.SweepGrantTokens(ctx); err != nil {
		return "", err
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO oauth_states (state_hash, client_id, expires_at, started_by) VALUES ($1, $2, now() + $3::interval, $4)`,
		hashState(state), clientID, interval(ttl), startedBy)
	if err != nil {
		return "", fmt.Errorf("store: new OAuth state: %w", err)
	}
	return state, nil
}

// SweepGrantTokens deletes OAuth states and grant links past their expiry:
// of no use to anyone.
func (s *Store) SweepGrantTokens(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM oauth_states WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("store: sweep OAuth states: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM grant_links WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("store: sweep grant links: %w", err)
	}
	return nil
}

// ConsumeOAuthState spends a state and returns the client it was made for
// and how the grant was started. A second call with the same state fails,
// so a replayed callback is refused.
func (s *Store) ConsumeOAuthState(ctx context.Context, state string) (clientID, startedBy string, err error) {
	var live bool
	err = s.pool.QueryRow(ctx, `
		DELETE FROM oauth_states WHERE state_hash = $1 RETURNING client_id, started_by, expires_at > now()`,
		hashState(state)).Scan(&clientID, &startedBy, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", ErrStateUnknown
	}
	if err != nil {
		return "", "", fmt.Errorf("store: consume OAuth state: %w", err)
	}
	if !live {
		return "", "", ErrStateExpired
	}
	return clientID, startedBy, nil
}

// Reasons a grant link is refused.
var (
	ErrLinkUnknown = errors.New("store: grant link unknown or already used")
	ErrLinkExpired = errors.New("store: grant link expired")
)

// NewGrantLink makes a single-use token that lets whoever holds it start
// the PKB grant within ttl; issuedBy says who was given it.
func (s *Store) NewGrantLink(ctx context.Context, clientID, issuedBy string, ttl time.Duration) (string, error) {
	link, err := randomToken()
	if err != nil {
		return "", err
	}
	if err := s.SweepGrantTokens(ctx); err != nil {
		return "", err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO grant_links (link_hash, client_id, issued_by, expires_at) VALUES ($1, $2, $3, now() + $4::interval)`,
		hashState(link), clientID, issuedBy, interval(ttl))
	if err != nil {
		return "", fmt.Errorf("store: new grant link: %w", err)
	}
	return link, nil
}

// PeekGrantLink says who a grant link was issued to without spending it,
// so the page that asks "grant access?" can refuse a dead link before
// anyone presses anything.
func (s *Store) PeekGrantLink(ctx context.Context, link, clientID string) (string, error) {
	return grantLink(s.pool.QueryRow(ctx, `SELECT issued_by, expires_at > now() FROM grant_links WHERE link_hash = $1 AND client_id = $2`,
		hashState(link), clientID), "peek")
}

// ConsumeGrantLink spends a grant link and says who it was issued to.
func (s *Store) ConsumeGrantLink(ctx context.Context, link, clientID string) (string, error) {
	return grantLink(s.pool.QueryRow(ctx, `DELETE FROM grant_links WHERE link_hash = $1 AND client_id = $2 RETURNING issued_by, expires_at > now()`,
		hashState(link), clientID), "consume")
}

// grantLink reads a grant link's row (who it was issued to, and whether it
// is live) as Peek and Consume answer: unknown, expired, or its issuer.
func grantLink(row pgx.Row, op string) (string, error) {
	var issuedBy string
	var live bool
	err := row.Scan(&issuedBy, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrLinkUnknown
	}
	if err != nil {
		return "", fmt.Errorf("store: %s grant link: %w", op, err)
	}
	if !live {
		return "", ErrLinkExpired
	}
	return issuedBy, nil
}
