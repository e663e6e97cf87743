package activities

import (
	"context"
	"errors"
	"fmt"
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
}

// GrantInfo is the stored grant, without its tokens.
type GrantInfo struct {
	Exists      bool
	Healthy     bool
	ExpiresAt   time.Time
	NeededSince *time.Time
	LastError   string
}

// RefreshResult says how a refresh went.
type RefreshResult struct {
	Refused   bool // PKB refused the refresh token: a human must grant again
	Reason    string
	ExpiresAt time.Time
}

// AskInput asks the admins to grant access again.
type AskInput struct {
	Reason   string
	Reminder int // 0 for the first message
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
	return GrantInfo{Exists: true, Healthy: g.Status == store.GrantHealthy,
		ExpiresAt: g.AccessExpiresAt, NeededSince: g.NeededSince, LastError: g.LastError}, nil
}

// RefreshGrant trades the refresh token for a new pair. The TokenKeeper is
// the only caller, so the pair has one writer.
func (a *GrantActivities) RefreshGrant(ctx context.Context, clientID string) (RefreshResult, error) {
	g, err := a.Store.Grant(ctx, clientID)
	if err != nil {
		return RefreshResult{}, err
	}
	if g.RefreshToken == "" {
		reason := "PKB gave no refresh token: the session ended"
		return RefreshResult{Refused: true, Reason: reason}, a.markNeeded(ctx, clientID, reason)
	}
	tok, err := pkb.Refresh(ctx, a.OAuth, g.RefreshToken)
	if pkb.IsKind(err, pkb.KindInvalidGrant) {
		reason := "PKB refused the refresh token (invalid_grant)"
		return RefreshResult{Refused: true, Reason: reason}, a.markNeeded(ctx, clientID, reason)
	}
	if err != nil {
		return RefreshResult{}, PKB{}.err(err)
	}
	if err := a.Store.SaveGrant(ctx, pkbauth.Grant(clientID, tok)); err != nil {
		return RefreshResult{}, err
	}
	return RefreshResult{ExpiresAt: tok.Expiry}, nil
}

func (a *GrantActivities) markNeeded(ctx context.Context, clientID, reason string) error {
	now := time.Now()
	if err := a.Store.SaveGrant(ctx, store.Grant{ClientID: clientID, Status: store.GrantNeedsGrant, NeededSince: &now, LastError: reason}); err != nil {
		return err
	}
	return a.Store.Audit(ctx, store.AuditEntry{Actor: "token-keeper", Action: "pkb-grant-needed", Subject: "pkb-grant/" + clientID, Detail: map[string]string{"reason": reason}})
}

// MarkGrantNeeded records that no grant is in force (never granted).
func (a *GrantActivities) MarkGrantNeeded(ctx context.Context, clientID, reason string) error {
	return a.markNeeded(ctx, clientID, reason)
}

// AskForGrant posts to the admins' channel with a link to grant again.
func (a *GrantActivities) AskForGrant(ctx context.Context, in AskInput) error {
	text := fmt.Sprintf(":warning: Rebook has no access to PKB: %s. Patient requests are waiting. A clinician who can see the teams' messages should grant access: %s", in.Reason, a.Links.Grant())
	if in.Reminder > 0 {
		text = fmt.Sprintf(":rotating_light: Reminder %d: Rebook still has no access to PKB (%s) and requests are waiting. Grant access: %s", in.Reminder, in.Reason, a.Links.Grant())
	}
	if in.Restored {
		text = ":white_check_mark: PKB access is granted again; waiting requests carry on."
	}
	return a.Notices.Notify(ctx, NotifyInput{Channel: a.AdminChannel, Text: text})
}
