package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/store"
)

// GrantActivities are the TokenKeeper's: read the grant, refresh it, and
// ask the admins for a new one when PKB refuses.
type GrantActivities struct {
	Store *store.Store
	// OAuth is PKB's OAuth configuration, for refreshes.
	OAuth   *pkb.OAuthConfig
	Notices *NoticeActivities
	// AdminChannel is REBOOK_ADMIN_CHANNEL.
	AdminChannel string
	Links        Links
	// PKB probes whether PKB answers again after refusing every call.
	PKB *pkb.Client
}

// What a paused grant waits for, as GrantInfo.Need and RefreshResult.Need
// say it.
const (
	NeedGrant     = store.NeedGrant
	NeedConfig    = store.NeedConfig
	NeedForbidden = store.NeedForbidden
)

// GrantInfo is the stored grant, without its tokens.
type GrantInfo struct {
	Exists      bool
	Healthy     bool
	ExpiresAt   time.Time
	NeededSince *time.Time
	LastError   string
	// Need is why work is paused: store.NeedGrant, NeedConfig or
	// NeedForbidden.
	Need string
}

// RefreshResult says how a refresh went.
type RefreshResult struct {
	Refused bool // PKB refused: work pauses until Need is met
	Need    string
	Reason  string
	// Superseded: a newer grant was stored while this refresh ran; the
	// refusal of the older one changed nothing.
	Superseded bool
	ExpiresAt  time.Time
}

// AskInput asks the admins to act on a paused grant.
type AskInput struct {
	Reason   string
	Need     string // store.NeedGrant if empty
	Reminder int    // 0 for the first message
	Restored bool
}

// LoadGrant reads the grant's state.
func (a *GrantActivities) LoadGrant(ctx context.Context, clientID string) (GrantInfo, error) {
	g, err := a.Store.Grant(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return GrantInfo{}, nil
	}
	if err != nil {
		return GrantInfo{}, err
	}
	need := g.NeedKind
	if need == "" && g.Status != store.GrantHealthy {
		need = store.NeedGrant
	}
	return GrantInfo{Exists: true, Healthy: g.Status == store.GrantHealthy,
		ExpiresAt: g.AccessExpiresAt, NeededSince: g.NeededSince, LastError: g.LastError, Need: need}, nil
}

// RefreshGrant trades the refresh token for a new pair. The TokenKeeper is
// the only caller, so the pair has one writer. Every refusal from PKB is a
// result saying what would bring access back, never a failure; only a
// failure worth retrying (PKB or the database unreachable) is an error.
func (a *GrantActivities) RefreshGrant(ctx context.Context, clientID string) (RefreshResult, error) {
	g, err := a.Store.Grant(ctx, clientID)
	if err != nil {
		return RefreshResult{}, err
	}
	if g.RefreshToken == "" {
		return a.refused(ctx, g, store.NeedGrant, "PKB gave no refresh token: the session ended")
	}
	tok, err := pkb.Refresh(ctx, a.OAuth, g.RefreshToken)
	countPKB(ctx, "POST "+pkb.TokenPath+" (refresh)", err)
	var pe *pkb.Error
	switch {
	case err == nil:
		// PKB has rotated the refresh token: the old one is dead, so the
		// new pair is saved whatever happens to this activity now.
		return RefreshResult{ExpiresAt: tok.Expiry}, a.keep(ctx, pkbauth.Grant(clientID, tok))
	case pkb.IsKind(err, pkb.KindInvalidGrant):
		return a.refused(ctx, g, store.NeedGrant, "PKB refused the refresh token (invalid_grant): the grant was revoked or has run out")
	case pkb.IsKind(err, pkb.KindInvalidClient):
		return a.refused(ctx, g, store.NeedConfig, "PKB rejected Rebook's client credentials (invalid_client)")
	case errors.As(err, &pe) && !pe.Retryable():
		return a.refused(ctx, g, store.NeedConfig, fmt.Sprintf("PKB refused the token refresh (HTTP %d %s)", pe.Status, pe.Kind))
	}
	return RefreshResult{}, PKB{}.err(ctx, err)
}

// keep saves a new token pair on a context shutdown does not cancel,
// retrying for up to a minute: losing it would lose the grant.
func (a *GrantActivities) keep(ctx context.Context, g store.Grant) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := a.Store.SaveGrant(ctx, g)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("saving the new PKB token pair: %w", err)
		case <-time.After(wait):
		}
	}
}

// refused pauses the grant it refreshed, unless a newer one was stored
// meanwhile, and audits why.
func (a *GrantActivities) refused(ctx context.Context, g store.Grant, need, reason string) (RefreshResult, error) {
	if g.Status == store.GrantNeedsGrant && g.NeedKind == need && g.LastError == reason {
		return RefreshResult{Refused: true, Need: need, Reason: reason}, nil // a probe of the same pause
	}
	paused, err := a.Store.PauseGrant(ctx, g.ClientID, need, reason, &g.UpdatedAt)
	if err != nil {
		return RefreshResult{}, err
	}
	if !paused {
		return RefreshResult{Superseded: true}, nil
	}
	return RefreshResult{Refused: true, Need: need, Reason: reason}, a.audit(ctx, g.ClientID, need, reason)
}

func (a *GrantActivities) audit(ctx context.Context, clientID, need, reason string) error {
	return a.Store.Audit(ctx, store.AuditEntry{Actor: "token-keeper", Action: "pkb-grant-needed", Subject: "pkb-grant/" + clientID,
		Detail: map[string]string{"reason": reason, "need": need}})
}

// MarkGrantNeeded records that no grant is in force (never granted).
func (a *GrantActivities) MarkGrantNeeded(ctx context.Context, clientID, reason string) error {
	if _, err := a.Store.PauseGrant(ctx, clientID, store.NeedGrant, reason, nil); err != nil {
		return err
	}
	return a.audit(ctx, clientID, store.NeedGrant, reason)
}

// ProbeAccess asks PKB once, with the stored token, whether it answers
// again after refusing every call; if it does, the grant is healthy again
// and paused work resumes.
func (a *GrantActivities) ProbeAccess(ctx context.Context, clientID string) (bool, error) {
	if a.PKB == nil {
		return false, errors.New("no PKB client to probe with")
	}
	err := a.PKB.Probe(ctx)
	if pkb.IsKind(err, pkb.KindForbidden) || pkb.IsKind(err, pkb.KindUnauthorized) {
		return false, nil
	}
	if err != nil {
		return false, PKB{}.err(ctx, err)
	}
	if _, err := a.Store.ResumeGrant(ctx, clientID, store.NeedForbidden); err != nil {
		return false, err
	}
	return true, a.Store.Audit(ctx, store.AuditEntry{Actor: "token-keeper", Action: "pkb-access-restored", Subject: "pkb-grant/" + clientID})
}

// AskForGrant posts to the admins' channel what stopped Rebook's access to
// PKB and what brings it back: a clinician's grant (with the link), a
// configuration fix, or PKB restoring access.
func (a *GrantActivities) AskForGrant(ctx context.Context, in AskInput) error {
	// Each alert carries its own link, good once for 30 minutes.
	link, err := a.Store.NewGrantLink(ctx, a.OAuth.ClientID, "the admins' Slack alert", 30*time.Minute)
	if err != nil {
		return err
	}
	grant := a.Links.GrantLink(link) + " (good once, for 30 minutes; `starter grant-link` makes another)"
	var text string
	switch in.Need {
	case NeedConfig:
		text = fmt.Sprintf("PKB rejected Rebook's configuration: %s. Fix PKB_CLIENT_ID and PKB_CLIENT_SECRET (or the client's set-up with PKB) and restart the worker; Rebook tries again every minute and resumes by itself. Patient requests are waiting.", in.Reason)
	case NeedForbidden:
		text = fmt.Sprintf("PKB refuses every call from Rebook: %s. Ask PKB to restore the client's access and scope, or grant access again: %s. Rebook checks every minute and resumes by itself. Patient requests are waiting.", in.Reason, grant)
	default:
		text = fmt.Sprintf("Rebook has no access to PKB: %s. Patient requests are waiting. A clinician who can see the teams' messages should grant access again: %s", in.Reason, grant)
	}
	text = ":warning: " + text
	if in.Reminder > 0 {
		text = fmt.Sprintf(":rotating_light: Reminder %d: %s", in.Reminder, strings.TrimPrefix(text, ":warning: "))
	}
	if in.Restored {
		text = ":white_check_mark: PKB access is back; waiting requests carry on."
	}
	return a.Notices.Notify(ctx, NotifyInput{Channel: a.AdminChannel, Text: text})
}
