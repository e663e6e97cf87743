// Package pkbauth gives PKB calls their access token from the stored grant.
package pkbauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/store"
)

// ErrGrantNeeded means no clinician's grant is in force: PKB calls must
// wait for someone to grant access again. It is worth retrying later.
var ErrGrantNeeded = errors.New("pkb: access not granted (a clinician must grant it again)")

// Tokens reads the access token from the store and refreshes it, under a
// cluster-wide lock, when it is about to expire.
type Tokens struct {
	Store    *store.Store
	OAuth    *oauth2.Config
	ClientID string
	// Margin refreshes this long before expiry; 2 minutes if zero.
	Margin time.Duration
	Now    func() time.Time
}

func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Tokens) margin() time.Duration {
	if t.Margin > 0 {
		return t.Margin
	}
	return 2 * time.Minute
}

// AccessToken returns a live access token, or ErrGrantNeeded.
func (t *Tokens) AccessToken(ctx context.Context) (string, error) {
	g, err := t.Store.Grant(ctx, t.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrGrantNeeded
	}
	if err != nil {
		return "", err
	}
	if g.Status == store.GrantNeedsGrant || g.AccessToken == "" {
		return "", ErrGrantNeeded
	}
	if g.AccessExpiresAt.Sub(t.now()) > t.margin() {
		return g.AccessToken, nil
	}
	var tok string
	err = t.Store.WithLock(ctx, "pkb-refresh:"+t.ClientID, func(ctx context.Context) error {
		// Another process may have refreshed while this one waited.
		g, err := t.Store.Grant(ctx, t.ClientID)
		if err != nil {
			return err
		}
		if g.Status == store.GrantNeedsGrant {
			return ErrGrantNeeded
		}
		if g.AccessExpiresAt.Sub(t.now()) > t.margin() {
			tok = g.AccessToken
			return nil
		}
		if g.RefreshToken == "" {
			return t.needGrant(ctx, "the session ended without a refresh token")
		}
		fresh, err := pkb.Refresh(ctx, t.OAuth, g.RefreshToken)
		if pkb.IsKind(err, pkb.KindInvalidGrant) {
			return t.needGrant(ctx, "PKB refused the refresh token (invalid_grant)")
		}
		if err != nil {
			return err
		}
		if err := t.Store.SaveGrant(ctx, Grant(t.ClientID, fresh)); err != nil {
			return err
		}
		tok = fresh.AccessToken
		return nil
	})
	return tok, err
}

func (t *Tokens) needGrant(ctx context.Context, why string) error {
	now := t.now()
	if err := t.Store.SaveGrant(ctx, store.Grant{ClientID: t.ClientID, Status: store.GrantNeedsGrant, NeededSince: &now, LastError: why}); err != nil {
		return err
	}
	return ErrGrantNeeded
}

// Grant turns a token response into the stored form.
func Grant(clientID string, tok *oauth2.Token) store.Grant {
	return store.Grant{ClientID: clientID, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, AccessExpiresAt: tok.Expiry, Status: store.GrantHealthy}
}

// AutoGrant performs the grant against a PKB that approves without asking
// (the simulator with --auto-approve), for the local stack and tests.
func AutoGrant(ctx context.Context, cfg *oauth2.Config, st *store.Store) error {
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.AuthCodeURL("auto-grant"), nil)
	if err != nil {
		return err
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		return fmt.Errorf("pkb auto-grant: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return fmt.Errorf("pkb auto-grant: authorize answered %d, not a redirect (is auto-approve on?)", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return fmt.Errorf("pkb auto-grant: no code in the redirect")
	}
	tok, err := pkb.Exchange(ctx, cfg, loc.Query().Get("code"))
	if err != nil {
		return err
	}
	return st.SaveGrant(ctx, Grant(cfg.ClientID, tok))
}
