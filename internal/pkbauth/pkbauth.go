// Package pkbauth gives PKB calls their access token from the stored grant.
package pkbauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/store"
)

// ErrGrantNeeded means no clinician's grant is in force: PKB calls must
// wait for someone to grant access again. It is worth retrying later.
var ErrGrantNeeded = errors.New("pkb: access not granted (a clinician must grant it again)")

// ErrTokenExpired means the access token has run out and the TokenKeeper
// has been asked to refresh it: retry in a few seconds.
var ErrTokenExpired = errors.New("pkb: access token expired; refresh requested")

// Tokens reads the access token from the store. It never refreshes: the
// TokenKeeper is the pair's only writer. When the token is about to run
// out, or PKB refused it, it asks the keeper to refresh now (Nudge).
type Tokens struct {
	Store    *store.Store
	ClientID string
	// Nudge asks the TokenKeeper of ClientID for an immediate refresh.
	Nudge func(ctx context.Context, clientID string) error
	// Margin nudges this long before expiry; 1 minute if zero.
	Margin time.Duration
	Now    func() time.Time

	mu   sync.Mutex
	dead [32]byte // hash of the last token PKB refused with 401
}

func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// AccessToken returns a live access token, ErrGrantNeeded or
// ErrTokenExpired. While a grant is needed it makes no PKB call at all.
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
	// One 401 is enough: no other call in this process presents the same
	// token until the keeper has replaced it.
	if t.isDead(g.AccessToken) {
		t.nudge(ctx)
		return "", ErrTokenExpired
	}
	left := g.AccessExpiresAt.Sub(t.now())
	margin := t.Margin
	if margin == 0 {
		margin = time.Minute
	}
	if left <= margin {
		t.nudge(ctx)
	}
	if left <= 0 {
		return "", ErrTokenExpired
	}
	return g.AccessToken, nil
}

// StoredToken is the stored access token whatever the grant's state: for
// the probe that finds out whether PKB answers again.
func (t *Tokens) StoredToken(ctx context.Context) (string, error) {
	g, err := t.Store.Grant(ctx, t.ClientID)
	if errors.Is(err, store.ErrNotFound) || err == nil && g.AccessToken == "" {
		return "", ErrGrantNeeded
	}
	return g.AccessToken, err
}

// Forbidden pauses work when PKB refuses every call (403 to a call that
// names no patient): access or scope was withdrawn. The TokenKeeper is
// told, alerts the admins and probes until PKB answers again.
func (t *Tokens) Forbidden(ctx context.Context) error {
	_, err := t.Store.PauseGrant(ctx, t.ClientID, store.NeedForbidden, "PKB refuses every call (HTTP 403): access or scope was withdrawn", nil)
	t.nudge(ctx)
	return err
}

// Rejected is told when PKB answered 401 to token: it is not used again
// in this process, and the keeper is asked to refresh.
func (t *Tokens) Rejected(ctx context.Context, token string) {
	t.mu.Lock()
	t.dead = sha256.Sum256([]byte(token))
	t.mu.Unlock()
	t.nudge(ctx)
}

func (t *Tokens) isDead(token string) bool {
	h := sha256.Sum256([]byte(token))
	t.mu.Lock()
	defer t.mu.Unlock()
	return h == t.dead
}

func (t *Tokens) nudge(ctx context.Context) {
	if t.Nudge != nil {
		_ = t.Nudge(ctx, t.ClientID)
	}
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
