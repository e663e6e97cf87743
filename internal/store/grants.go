package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Grant statuses.
const (
	GrantHealthy    = "healthy"
	GrantNeedsGrant = "needs-grant"
)

// What a paused grant needs before work resumes.
const (
	NeedGrant     = "grant"     // a clinician must grant access again
	NeedConfig    = "config"    // PKB refused Rebook's client credentials
	NeedForbidden = "forbidden" // PKB refused every call: access or scope withdrawn
)

// Grant is the PKB token pair for one OAuth client, in clear in memory only.
type Grant struct {
	ClientID        string
	AccessToken     string
	RefreshToken    string
	AccessExpiresAt time.Time
	Status          string
	NeededSince     *time.Time
	LastError       string
	NeedKind        string // why it is paused: NeedGrant, NeedConfig or NeedForbidden
	UpdatedAt       time.Time
}

// ErrNoKey means the store was opened without REBOOK_ENCRYPTION_KEY.
var ErrNoKey = errors.New("store: REBOOK_ENCRYPTION_KEY is needed to keep PKB tokens")

func place(clientID, column string) string { return "pkb_grants/" + clientID + "/" + column }

func (s *Store) seal(v, clientID, column string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	return s.box.Seal([]byte(v), place(clientID, column))
}

func (s *Store) open(b []byte, clientID, column string) (string, error) {
	if b == nil {
		return "", nil
	}
	pt, err := s.box.Open(b, place(clientID, column))
	return string(pt), err
}

// SaveGrant stores the grant, sealing both tokens.
func (s *Store) SaveGrant(ctx context.Context, g Grant) error {
	if s.box == nil {
		return ErrNoKey
	}
	if g.Status != GrantHealthy && g.Status != GrantNeedsGrant {
		return fmt.Errorf("store: grant status %q is not %s or %s", g.Status, GrantHealthy, GrantNeedsGrant)
	}
	at, err := s.seal(g.AccessToken, g.ClientID, "access_token")
	if err != nil {
		return err
	}
	rt, err := s.seal(g.RefreshToken, g.ClientID, "refresh_token")
	if err != nil {
		return err
	}
	var exp *time.Time
	if !g.AccessExpiresAt.IsZero() {
		exp = &g.AccessExpiresAt
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO pkb_grants (client_id, access_token, refresh_token, access_expires_at, status, needed_since, last_error, need_kind)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (client_id) DO UPDATE SET
		    access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token,
		    access_expires_at = EXCLUDED.access_expires_at, status = EXCLUDED.status,
		    needed_since = EXCLUDED.needed_since, last_error = EXCLUDED.last_error,
		    need_kind = EXCLUDED.need_kind, updated_at = clock_timestamp()`,
		g.ClientID, at, rt, exp, g.Status, g.NeededSince, g.LastError, g.NeedKind)
	if err != nil {
		return fmt.Errorf("store: save grant: %w", err)
	}
	return nil
}

// Grant loads the grant for clientID, opening its tokens.
func (s *Store) Grant(ctx context.Context, clientID string) (Grant, error) {
	if s.box == nil {
		return Grant{}, ErrNoKey
	}
	g := Grant{ClientID: clientID}
	var at, rt []byte
	var exp *time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT access_token, refresh_token, access_expires_at, status, needed_since, last_error, need_kind, updated_at
		FROM pkb_grants WHERE client_id = $1`, clientID).Scan(&at, &rt, &exp, &g.Status, &g.NeededSince, &g.LastError, &g.NeedKind, &g.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Grant{}, ErrNotFound
	}
	if err != nil {
		return Grant{}, fmt.Errorf("store: read grant: %w", err)
	}
	if exp != nil {
		g.AccessExpiresAt = *exp
	}
	if g.AccessToken, err = s.open(at, clientID, "access_token"); err != nil {
		return Grant{}, fmt.Errorf("store: access token: %w", err)
	}
	if g.RefreshToken, err = s.open(rt, clientID, "refresh_token"); err != nil {
		return Grant{}, fmt.Errorf("store: refresh token: %w", err)
	}
	return g, nil
}

// PauseGrant marks the grant paused (status needs-grant) for a reason,
// keeping its tokens: a clinician's re-grant replaces them, and a
// configuration fix or PKB answering again needs them. With seen set, it
// changes nothing unless the grant is still the one last read (its
// UpdatedAt): a refusal of an old token never pauses a newer grant. It
// reports whether it paused.
func (s *Store) PauseGrant(ctx context.Context, clientID, kind, reason string, seen *time.Time) (bool, error) {
	var tag pgconn.CommandTag
	var err error
	if seen == nil {
		tag, err = s.pool.Exec(ctx, `
			INSERT INTO pkb_grants (client_id, status, needed_since, last_error, need_kind) VALUES ($1, $2, now(), $3, $4)
			ON CONFLICT (client_id) DO UPDATE SET status = EXCLUDED.status,
			    needed_since = COALESCE(pkb_grants.needed_since, EXCLUDED.needed_since),
			    last_error = EXCLUDED.last_error, need_kind = EXCLUDED.need_kind, updated_at = clock_timestamp()`,
			clientID, GrantNeedsGrant, reason, kind)
	} else {
		tag, err = s.pool.Exec(ctx, `
			UPDATE pkb_grants SET status = $2, needed_since = COALESCE(needed_since, now()), last_error = $3,
			    need_kind = $4, updated_at = clock_timestamp()
			WHERE client_id = $1 AND updated_at = $5`, clientID, GrantNeedsGrant, reason, kind, *seen)
	}
	if err != nil {
		return false, fmt.Errorf("store: pause grant: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// ResumeGrant marks a grant paused for kind healthy again, when PKB
// answers once more; a grant paused for another reason stays paused.
func (s *Store) ResumeGrant(ctx context.Context, clientID, kind string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE pkb_grants SET status = $2, needed_since = NULL, last_error = '', need_kind = '', updated_at = clock_timestamp()
		WHERE client_id = $1 AND status = $3 AND need_kind = $4 AND access_token IS NOT NULL`,
		clientID, GrantHealthy, GrantNeedsGrant, kind)
	if err != nil {
		return false, fmt.Errorf("store: resume grant: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}
