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
	// ProbeEvery is how often a pause that PKB itself may lift (a
	// configuration fix, access restored) is tried again; 1 minute if zero.
	ProbeEvery time.Duration
	// Paused carries a pause into the next run, so the admins are not
	// asked again from the start.
	Paused *KeeperPause
}

// KeeperPause is a pause in progress.
type KeeperPause struct {
	Need    string
	Reason  string
	Since   time.Time
	Asked   int
	NextAsk time.Time
}

// Keeper states, as the state query reports them.
const (
	KeeperHealthy     = "healthy"
	KeeperRefreshing  = "refreshing"
	KeeperNeedsGrant  = "needs grant"
	KeeperNeedsConfig = "needs configuration"
	KeeperForbidden   = "forbidden"
)

// Changes to TokenKeeper's logic, for workflow.GetVersion.
const changeKeeperNeverDies = "keeper-never-dies"

// keeperRetryPause is how long the keeper waits after a failed step before
// trying again: it never stops.
const keeperRetryPause = time.Minute

// keeperHistoryLimit is the history length at which a long pause continues
// as new.
const keeperHistoryLimit = 5000

// KeeperStatus is what the state query returns.
type KeeperStatus struct {
	State       string
	ExpiresAt   time.Time
	NeededSince time.Time
	LastError   string
	Refreshes   int
	Need        string // what a pause waits for: grant, config or forbidden
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
	if in.ProbeEvery <= 0 {
		in.ProbeEvery = time.Minute
	}
	st := KeeperStatus{State: KeeperHealthy, Refreshes: in.Cycles}
	if err := workflow.SetQueryHandler(ctx, QueryTokenKeeper, func() (KeeperStatus, error) { return st, nil }); err != nil {
		return err
	}
	refreshNow := workflow.GetSignalChannel(ctx, SignalRefreshNow)
	granted := workflow.GetSignalChannel(ctx, SignalGrantReceived)
	if workflow.GetVersion(ctx, changeKeeperNeverDies, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return tokenKeeperV1(ctx, in, &st, refreshNow, granted)
	}
	k := &keeper{in: in, st: &st, refreshNow: refreshNow, granted: granted}
	return k.run(ctx)
}

// tokenKeeperV1 is the keeper as it ran before keeper-never-dies, kept so
// that runs started then replay; they move to the new keeper at their next
// continue-as-new.
func tokenKeeperV1(ctx workflow.Context, in KeeperInput, st *KeeperStatus, refreshNow, granted workflow.ReceiveChannel) error {
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
			if err := needGrant(ctx, st, in, reason, granted); err != nil {
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
			if err := needGrant(ctx, st, in, res.Reason, granted); err != nil {
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
			drain(c)
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

type keeper struct {
	in                  KeeperInput
	st                  *KeeperStatus
	refreshNow, granted workflow.ReceiveChannel
}

// drain takes every signal waiting on ch: one refresh or reload answers
// them all.
func drain(ch workflow.ReceiveChannel) {
	for ch.ReceiveAsync(nil) {
	}
}

// act runs one activity; a failure is recorded in the state and followed
// by a pause, and the caller carries on: the keeper itself never fails.
func (k *keeper) act(ctx workflow.Context, out any, fn any, args ...any) error {
	err := workflow.ExecuteActivity(ctx, fn, args...).Get(ctx, out)
	if err != nil {
		k.st.LastError = err.Error()
		if serr := workflow.Sleep(ctx, keeperRetryPause); serr != nil {
			return serr
		}
	}
	return err
}

func (k *keeper) run(ctx workflow.Context) error {
	in := k.in
	if in.Paused != nil {
		if err := k.paused(ctx, *in.Paused); err != nil {
			return err
		}
	}
	force := false
	for cycle := 0; cycle < keeperCyclesBeforeNew; cycle++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var g activities.GrantInfo
		if k.act(withDB(ctx), &g, grantActs.LoadGrant, in.ClientID) != nil {
			continue
		}
		if !g.Exists || !g.Healthy {
			p := KeeperPause{Need: g.Need, Reason: g.LastError, Since: workflow.Now(ctx)}
			if !g.Exists {
				p.Need, p.Reason = activities.NeedGrant, "access was never granted"
				if k.act(withDB(ctx), nil, grantActs.MarkGrantNeeded, in.ClientID, p.Reason) != nil {
					continue
				}
			}
			if err := k.paused(ctx, p); err != nil {
				return err
			}
			force = false
			continue
		}
		k.st.State, k.st.ExpiresAt, k.st.LastError, k.st.Need = KeeperHealthy, g.ExpiresAt, "", ""
		if wait := g.ExpiresAt.Add(-in.Margin).Sub(workflow.Now(ctx)); !force && wait > 0 {
			tctx, cancel := workflow.WithCancel(ctx)
			woke := false
			sel := workflow.NewSelector(ctx)
			sel.AddFuture(workflow.NewTimer(tctx, wait), func(workflow.Future) {})
			sel.AddReceive(k.refreshNow, func(c workflow.ReceiveChannel, _ bool) { drain(c); woke, force = true, true })
			sel.AddReceive(k.granted, func(c workflow.ReceiveChannel, _ bool) { drain(c); woke = true })
			sel.Select(ctx)
			cancel()
			if woke {
				continue // read the grant again: an ask may come from a pause
			}
		}
		force = false
		k.st.State = KeeperRefreshing
		var res activities.RefreshResult
		if k.act(withPKB(ctx), &res, grantActs.RefreshGrant, in.ClientID) != nil {
			continue
		}
		drain(k.refreshNow) // asks made while refreshing are answered by it
		k.st.Refreshes++
		if res.Refused {
			if err := k.paused(ctx, KeeperPause{Need: res.Need, Reason: res.Reason, Since: workflow.Now(ctx)}); err != nil {
				return err
			}
		}
	}
	in.Cycles, in.Paused = k.st.Refreshes, nil
	return workflow.NewContinueAsNewError(ctx, TokenKeeperWorkflow, in)
}

func keeperState(need string) string {
	switch need {
	case activities.NeedConfig:
		return KeeperNeedsConfig
	case activities.NeedForbidden:
		return KeeperForbidden
	}
	return KeeperNeedsGrant
}

// paused waits until access is back: a clinician's grant (the callback
// signals), or, for a pause PKB may lift, a probe once a minute. It asks
// the admins once, with what to do, and reminds them on a widening
// schedule.
func (k *keeper) paused(ctx workflow.Context, p KeeperPause) error {
	if p.Need == "" {
		p.Need = activities.NeedGrant
	}
	k.st.State, k.st.LastError, k.st.Need, k.st.NeededSince = keeperState(p.Need), p.Reason, p.Need, p.Since
	for {
		now := workflow.Now(ctx)
		if !now.Before(p.NextAsk) {
			_ = k.act(withSlack(ctx), nil, grantActs.AskForGrant, activities.AskInput{Reason: p.Reason, Need: p.Need, Reminder: p.Asked})
			p.NextAsk = workflow.Now(ctx).Add(k.in.Reminders[min(p.Asked, len(k.in.Reminders)-1)])
			p.Asked++
		}
		if workflow.GetInfo(ctx).GetCurrentHistoryLength() >= keeperHistoryLimit {
			in := k.in
			in.Cycles, in.Paused = k.st.Refreshes, &p
			return workflow.NewContinueAsNewError(ctx, TokenKeeperWorkflow, in)
		}
		wait := p.NextAsk.Sub(workflow.Now(ctx))
		if p.Need != activities.NeedGrant && k.in.ProbeEvery < wait {
			wait = k.in.ProbeEvery
		}
		tctx, cancel := workflow.WithCancel(ctx)
		got := false
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(tctx, wait), func(workflow.Future) {})
		sel.AddReceive(k.granted, func(c workflow.ReceiveChannel, _ bool) { drain(c); got = true })
		sel.AddReceive(k.refreshNow, func(c workflow.ReceiveChannel, _ bool) { drain(c) })
		sel.Select(ctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		back := false
		switch {
		case got:
			var g activities.GrantInfo
			back = k.act(withDB(ctx), &g, grantActs.LoadGrant, k.in.ClientID) == nil && g.Exists && g.Healthy
			if back {
				k.st.ExpiresAt = g.ExpiresAt
			}
		case p.Need == activities.NeedForbidden:
			var ok bool
			back = k.act(withPKB(ctx), &ok, grantActs.ProbeAccess, k.in.ClientID) == nil && ok
		case p.Need == activities.NeedConfig:
			var res activities.RefreshResult
			back = k.act(withPKB(ctx), &res, grantActs.RefreshGrant, k.in.ClientID) == nil && !res.Refused
			if back {
				k.st.ExpiresAt = res.ExpiresAt
			}
		}
		if back {
			k.st.State, k.st.LastError, k.st.Need = KeeperHealthy, "", ""
			_ = k.act(withSlack(ctx), nil, grantActs.AskForGrant, activities.AskInput{Restored: true})
			drain(k.refreshNow)
			return nil
		}
	}
}
