package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/rebookhq/rebook/internal/notify"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/store"
)

// TriageTeam is the team name triaged requests carry.
const TriageTeam = "Triage"

// RouteActivities decide where a request goes, post its card there, and
// keep the read model and audit log of its transitions.
type RouteActivities struct {
	Store *store.Store
	// Notify posts to the rule's channel, in Slack or Teams.
	Out notify.Notifier
	// TriageChannel is REBOOK_TRIAGE_CHANNEL; triaged requests are due
	// within TriageSLAHours (24 if zero).
	TriageChannel  string
	TriageSLAHours int
	Links          Links
	States         States
	// Notices alert AdminChannel, once per channel, when a team's channel
	// cannot take posts.
	Notices      *NoticeActivities
	AdminChannel string
	// FirstCheckAfter is REBOOK_FIRST_CHECK_AFTER: when a routed (or just
	// claimed) request's patient is first asked about; 5 min if zero.
	FirstCheckAfter time.Duration
	// Pending applies the PAS feed's updates kept for a placer id before
	// a request had it (feed.Feed.ApplyPending); nil in tests without a
	// feed.
	Pending func(ctx context.Context, placerID string) error
}

func (a *RouteActivities) firstCheck() time.Duration { return firstCheckOr(a.FirstCheckAfter) }

// teamPostAttempts bounds how often a post to a team's channel is tried
// before the request goes to triage instead.
const teamPostAttempts = 8

// RouteToTeam picks the team from the routing rules (or triage), records
// the request, posts its card to the team's channel exactly once, and
// audits where it went.
func (a *RouteActivities) RouteToTeam(ctx context.Context, in RouteInput) (Route, error) {
	r, err := a.pick(ctx, in)
	if err != nil {
		return Route{}, err
	}
	if err := a.record(ctx, in, r); err != nil {
		return Route{}, err
	}
	if r.ChannelID, r.TS, err = a.postOnce(ctx, in, r); err != nil {
		if r, err = a.fallBack(ctx, in, r, err); err != nil {
			return Route{}, throttled(err)
		}
	}
	if a.Pending != nil && in.PlacerID != "" {
		// The PAS may have acted before the request was matched: its
		// kept updates reach the request now, judged like any other.
		if err := a.Pending(ctx, in.PlacerID); err != nil {
			return Route{}, err
		}
	}
	return r, a.Store.Audit(ctx, store.AuditEntry{Actor: "rebook", Action: a.state(r), Subject: in.WorkflowID, Key: in.WorkflowID + "#routed", Detail: map[string]string{
		"team": r.Team, "channel": r.Channel, "reason": r.Reason, "appointment": in.AppointmentID,
	}})
}

// fallBack sends a request whose team channel cannot take the card to
// triage with the reason: at once when Slack says the channel is wrong,
// archived or closed to the app (and the admins are told, once per
// channel), or after teamPostAttempts of other failures. A failure to post
// to triage itself is returned, to be retried.
func (a *RouteActivities) fallBack(ctx context.Context, in RouteInput, r Route, err error) (Route, error) {
	if r.Triage {
		return r, err
	}
	code, undeliverable := notify.Undeliverable(err)
	if !undeliverable && (!activity.IsActivity(ctx) || activity.GetInfo(ctx).Attempt < teamPostAttempts) {
		return r, err
	}
	svc, where := Place(r.Channel)
	reason := fmt.Sprintf("%s would not take the card in %s (%s)", svc, where, code)
	if !undeliverable {
		reason = fmt.Sprintf("%s kept failing to post the card in %s", svc, where)
	}
	if undeliverable && a.Notices != nil && a.AdminChannel != "" {
		text := fmt.Sprintf(":warning: Rebook cannot post to %s (%s): requests for %s go to triage until the routing rule or the channel is fixed (`starter rules import` checks every channel).",
			where, code, r.Team)
		if err := a.Notices.Notify(ctx, NotifyInput{Channel: a.AdminChannel, Text: text, Key: "undeliverable-channel/" + r.Channel}); err != nil {
			return r, err
		}
	}
	t := r
	t.Triage, t.Reason = true, reason
	t.Team, t.Channel, t.SLAHours = TriageTeam, a.TriageChannel, a.TriageSLAHours
	if t.SLAHours == 0 {
		t.SLAHours = 24
	}
	if err := a.record(ctx, in, t); err != nil {
		return r, err
	}
	t.ChannelID, t.TS, err = a.postOnce(ctx, in, t)
	return t, err
}

// Place names a channel setting's service and the channel as people know
// it: "Slack", "#rebook-cardiology"; "Teams", "the Teams channel 19:…".
func Place(channel string) (service, where string) {
	svc, id, err := notify.Parse(channel)
	if err == nil && svc == notify.Teams {
		return "Teams", "the Teams channel " + id
	}
	return "Slack", "#" + strings.TrimPrefix(strings.TrimPrefix(channel, "slack:"), "#")
}

// pick chooses the team: the first matching rule, or triage with the
// reason when the workflow asks for it or no rule matches.
func (a *RouteActivities) pick(ctx context.Context, in RouteInput) (Route, error) {
	ref, err := a.Store.RefFor(ctx, store.Request{MessageID: in.MessageID, WorkflowID: in.WorkflowID, State: a.States.Received, ReceivedAt: in.ReceivedAt})
	if err != nil {
		return Route{}, err
	}
	r := Route{Ref: ref, Triage: in.Triage, Reason: in.Reason}
	if !r.Triage {
		rules, err := a.Store.Rules(ctx)
		if err != nil {
			return Route{}, err
		}
		rule, ok := routing.Match(rules, in.Specialty, in.Clinic, in.RequestType)
		if ok {
			r.Team, r.Channel, r.SLAHours = rule.Team, rule.SlackChannel, rule.SLAHours
			return r, nil
		}
		r.Triage, r.Reason = true, "no routing rule matches and there is no catch-all rule"
	}
	r.Team, r.Channel, r.SLAHours = TriageTeam, a.TriageChannel, a.TriageSLAHours
	if r.SLAHours == 0 {
		r.SLAHours = 24
	}
	return r, nil
}

func (a *RouteActivities) state(r Route) string {
	if r.Triage {
		return a.States.Triaged
	}
	return a.States.Routed
}

// record writes the routed request to the read model.
func (a *RouteActivities) record(ctx context.Context, in RouteInput, r Route) error {
	var start, updated *time.Time
	if !in.Start.IsZero() {
		start = &in.Start
	}
	if !in.AppointmentUpdatedAt.IsZero() {
		updated = &in.AppointmentUpdatedAt
	}
	err := a.Store.SaveRequest(ctx, store.Request{
		MessageID: in.MessageID, WorkflowID: in.WorkflowID, Ref: r.Ref, State: a.state(r), RequestType: in.RequestType,
		Specialty: in.Specialty, SpecialtyCode: in.SpecialtyCode, Clinic: in.Clinic, Team: r.Team,
		AppointmentID: in.AppointmentID, AppointmentStart: start, PatientID: in.PatientID, PlacerID: in.PlacerID,
		PlacerSystem: in.PlacerSystem, AppointmentUpdatedAt: updated, NHSDigest: in.NHSDigest,
		Triage: r.Triage, Flags: strings.Join(in.Flags, "; "), Reason: r.Reason, ReceivedAt: in.ReceivedAt,
	})
	if err != nil {
		return err
	}
	now := time.Now()
	return a.Store.ScheduleCheck(ctx, in.MessageID, now.Add(a.firstCheck()), a.firstCheck(), now.Add(time.Duration(r.SLAHours)*time.Hour))
}

// postOnce posts the request's card to its team's channel exactly once: a
// retry after a lost response finds the earlier post instead of repeating
// it. It returns the channel id and the post's timestamp.
func (a *RouteActivities) postOnce(ctx context.Context, in RouteInput, r Route) (string, string, error) {
	chID, err := a.Out.Resolve(ctx, r.Channel)
	if err != nil {
		return "", "", err
	}
	before, err := a.Store.StartSlackPost(ctx, in.MessageID, chID)
	if err != nil {
		return "", "", err
	}
	if before.TS != "" {
		return before.Channel, before.TS, nil
	}
	ts := ""
	if before.StartedAt != nil {
		// An earlier attempt may have posted and lost the answer; ts stays
		// empty when it did not.
		if ts, err = a.Out.FindCard(ctx, chID, r.Ref, before.StartedAt.Add(-time.Minute)); err != nil {
			return "", "", err
		}
	}
	if ts == "" {
		c := in.Card
		c.Ref, c.Triage, c.Reason, c.DashboardURL = r.Ref, r.Triage, r.Reason, a.Links.Request(r.Ref)
		if ts, err = a.Out.Post(ctx, chID, c, time.Now()); err != nil {
			return "", "", err
		}
	}
	return chID, ts, a.Store.SetSlackPost(ctx, in.MessageID, chID, ts)
}

// RecordState records a transition in the read model and the audit log.
func (a *RouteActivities) RecordState(ctx context.Context, in StateInput) error {
	if in.CheckSoon && !in.Closed {
		if err := a.Store.ScheduleCheck(ctx, in.MessageID, time.Now().Add(a.firstCheck()), a.firstCheck(), time.Time{}); err != nil {
			return err
		}
	}
	audit := store.AuditEntry{Actor: in.Actor, Action: in.Action, Subject: in.WorkflowID, Detail: in.Detail}
	if in.Seq > 0 {
		// Per run: a retried write is audited once, but a request
		// restarted or reset by an operator numbers its writes again, and
		// those are new entries.
		run := ""
		if activity.IsActivity(ctx) {
			run = "/" + activity.GetInfo(ctx).WorkflowExecution.RunID
		}
		audit.Key = fmt.Sprintf("%s%s#%d", in.WorkflowID, run, in.Seq)
	}
	return a.Store.ChangeState(ctx, store.StateChange{
		MessageID: in.MessageID, State: in.State, ClaimedBy: in.ClaimedBy, ClosedBy: in.ClosedBy, CloseNote: in.CloseNote, Closed: in.Closed,
		Seq: in.Seq, TriageReason: in.TriageReason,
	}, audit)
}
