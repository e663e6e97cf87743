package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
)

// TokenKeeper's names: its type, its messages, and its id, one per PKB
// client.
const (
	TokenKeeperWorkflow = "TokenKeeper"
	SignalRefreshNow    = "refresh-now"
	SignalGrantReceived = "grant-received"
	QueryTokenKeeper    = "state"

	keeperIDPrefix = "token-keeper-"
)

// TokenKeeperID is the workflow id of the keeper for a PKB client.
func TokenKeeperID(clientID string) string { return keeperIDPrefix + clientID }

// ClientIDFromTokenKeeperID is TokenKeeperID's inverse; false when the id
// is not a keeper's.
func ClientIDFromTokenKeeperID(workflowID string) (string, bool) {
	id, ok := strings.CutPrefix(workflowID, keeperIDPrefix)
	return id, ok && id != ""
}

// KeeperInput configures a TokenKeeper; it carries only an id and timings.
type KeeperInput struct {
	ClientID string
	// Margin refreshes this long before the access token expires.
	Margin time.Duration
	// Reminders are the waits between asks while a grant is needed; the
	// last one repeats.
	Reminders []time.Duration
	// Cycles counts refreshes so far, to continue as new before the
	// history grows large.
	Cycles int
}

// Keeper states, as the state query reports them.
const (
	KeeperHealthy    = "healthy"
	KeeperRefreshing = "refreshing"
	KeeperNeedsGrant = "needs grant"
)

// KeeperStatus is what the state query returns.
type KeeperStatus struct {
	State       string
	ExpiresAt   time.Time
	NeededSince time.Time
	LastError   string
	Refreshes   int
}

const keeperCyclesBeforeNew = 100

// TokenKeeper is the only writer of the PKB token pair. It refreshes ahead
// of expiry; when PKB refuses (or there never was a grant) it marks the
// grant needed, asks the admins in Slack with a link to grant again,
// reminds them on a widening schedule, and resumes on its own when the
// grant callback signals.
func TokenKeeper(ctx workflow.Context, in KeeperInput) error {
	if in.Margin <= 0 {
		in.Margin = 5 * time.Minute
	}
	if len(in.Reminders) == 0 {
		in.Reminders = []time.Duration{15 * time.Minute, time.Hour, 4 * time.Hour, 12 * time.Hour}
	}
	st := KeeperStatus{State: KeeperHealthy, Refreshes: in.Cycles}
	if err := workflow.SetQueryHandler(ctx, QueryTokenKeeper, func() (KeeperStatus, error) { return st, nil }); err != nil {
		return err
	}
	refreshNow := workflow.GetSignalChannel(ctx, SignalRefreshNow)
	granted := workflow.GetSignalChannel(ctx, SignalGrantReceived)
	drain := func(ch workflow.ReceiveChannel) bool {
		got := false
		for ch.ReceiveAsync(nil) {
			got = true
		}
		return got
	}

	for cycle := 0; cycle < keeperCyclesBeforeNew; cycle++ {
		var g activities.GrantInfo
		if err := workflow.ExecuteActivity(withDB(ctx), grantActs.LoadGrant, in.ClientID).Get(ctx, &g); err != nil {
			return err
		}
		if !g.Exists || !g.Healthy {
			reason := g.LastError
			if !g.Exists {
				reason = "access was never granted"
				if err := workflow.ExecuteActivity(withDB(ctx), grantActs.MarkGrantNeeded, in.ClientID, reason).Get(ctx, nil); err != nil {
					return err
				}
			}
			if err := needGrant(ctx, &st, in, reason, granted); err != nil {
				return err
			}
			drain(refreshNow)
			continue
		}
		st.State, st.ExpiresAt, st.LastError = KeeperHealthy, g.ExpiresAt, ""
		wait := g.ExpiresAt.Add(-in.Margin).Sub(workflow.Now(ctx))
		if wait > 0 {
			sel := workflow.NewSelector(ctx)
			timer := workflow.NewTimer(ctx, wait)
			sel.AddFuture(timer, func(workflow.Future) {})
			sel.AddReceive(refreshNow, func(c workflow.ReceiveChannel, _ bool) { drain(c) })
			sel.AddReceive(granted, func(c workflow.ReceiveChannel, _ bool) { drain(c) })
			sel.Select(ctx)
		}
		st.State = KeeperRefreshing
		var res activities.RefreshResult
		if err := workflow.ExecuteActivity(withPKB(ctx), grantActs.RefreshGrant, in.ClientID).Get(ctx, &res); err != nil {
			return err
		}
		drain(refreshNow) // asks made while refreshing are answered by it
		st.Refreshes++
		if res.Refused {
			st.LastError = res.Reason
			if err := needGrant(ctx, &st, in, res.Reason, granted); err != nil {
				return err
			}
		}
	}
	in.Cycles = st.Refreshes
	return workflow.NewContinueAsNewError(ctx, TokenKeeperWorkflow, in)
}

// needGrant asks for a grant and waits for it, reminding on schedule.
func needGrant(ctx workflow.Context, st *KeeperStatus, in KeeperInput, reason string, granted workflow.ReceiveChannel) error {
	st.State, st.LastError = KeeperNeedsGrant, reason
	st.NeededSince = workflow.Now(ctx)
	for n := 0; ; n++ {
		if err := workflow.ExecuteActivity(withSlack(ctx), grantActs.AskForGrant, activities.AskInput{Reason: reason, Reminder: n}).Get(ctx, nil); err != nil {
			return err
		}
		wait := in.Reminders[min(n, len(in.Reminders)-1)]
		got := false
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(ctx, wait), func(workflow.Future) {})
		sel.AddReceive(granted, func(c workflow.ReceiveChannel, _ bool) {
			for c.ReceiveAsync(nil) {
			}
			got = true
		})
		sel.Select(ctx)
		if !got {
			continue
		}
		var g activities.GrantInfo
		if err := workflow.ExecuteActivity(withDB(ctx), grantActs.LoadGrant, in.ClientID).Get(ctx, &g); err != nil {
			return err
		}
		if g.Exists && g.Healthy {
			st.State, st.ExpiresAt, st.LastError = KeeperHealthy, g.ExpiresAt, ""
			return workflow.ExecuteActivity(withSlack(ctx), grantActs.AskForGrant, activities.AskInput{Restored: true}).Get(ctx, nil)
		}
	}
}
