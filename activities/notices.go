package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/rebookhq/rebook/internal/notify"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/teams"
)

// NoticeActivities redraw cards and post reminders and alerts, in Slack or
// Teams as each channel says.
type NoticeActivities struct {
	Out notify.Notifier
	// Store keeps which keyed notices were posted; without it a retry may
	// post a keyed notice twice.
	Store *store.Store
	// TriageChannel takes notices that name no channel; AdminChannel
	// those that ask for the admins (NotifyInput.ToAdmins).
	TriageChannel string
	AdminChannel  string
	Links         Links
}

// UpdateCard redraws the request's card, with its dashboard link.
func (a *NoticeActivities) UpdateCard(ctx context.Context, in CardInput) error {
	c := in.Card
	c.DashboardURL = a.Links.Request(c.Ref)
	return undeliverable(a.Out.Update(ctx, in.ChannelID, in.TS, c, time.Now()))
}

// SlackUndeliverable is the error type of a post or edit Slack or Teams
// refuses for the channel itself (not found, archived, the app not in
// it): a workflow that bounds its tries stops at once on it. The name
// predates Teams and is kept: histories in flight carry it.
const SlackUndeliverable = "Slack:undeliverable"

// undeliverable names the service's refusal of the channel by its type,
// still retryable for callers that retry without bounds.
func undeliverable(err error) error {
	if code, ok := notify.Undeliverable(err); ok {
		return temporal.NewApplicationErrorWithCause(code, SlackUndeliverable, err)
	}
	return throttled(err)
}

// throttled retries a post Teams throttled after the wait it asked for
// (Retry-After), not on Temporal's own schedule.
func throttled(err error) error {
	var te *teams.Error
	if errors.As(err, &te) && te.RetryAfter > 0 {
		return temporal.NewApplicationErrorWithOptions(err.Error(), "Teams:throttled", temporal.ApplicationErrorOptions{NextRetryDelay: te.RetryAfter, Cause: err})
	}
	return err
}

// Notify posts a reminder or an escalation; no channel means the triage
// channel.
func (a *NoticeActivities) Notify(ctx context.Context, in NotifyInput) error {
	return undeliverable(a.notify(ctx, in))
}

func (a *NoticeActivities) notify(ctx context.Context, in NotifyInput) error {
	if in.Channel == "" && in.ToAdmins && a.AdminChannel != "" {
		in.Channel = a.AdminChannel
	}
	if in.Channel == "" {
		in.Channel = a.TriageChannel
	}
	ch, err := a.Out.Resolve(ctx, in.Channel)
	if err != nil {
		return err
	}
	say := func() (string, error) {
		if in.Question != nil {
			return a.Out.Ask(ctx, ch, in.ThreadTS, in.Text, *in.Question)
		}
		return a.Out.Say(ctx, ch, in.ThreadTS, in.Text)
	}
	if in.Key == "" || a.Store == nil {
		_, err = say()
		return err
	}
	before, err := a.Store.StartNotice(ctx, in.Key, ch)
	if err != nil {
		return err
	}
	if before.TS != "" {
		return nil
	}
	ts := ""
	if before.StartedAt != nil {
		// An earlier attempt may have posted and lost the answer.
		if ts, err = a.Out.FindText(ctx, ch, in.ThreadTS, in.Text, before.StartedAt.Add(-time.Minute)); err != nil {
			return err
		}
	}
	if ts == "" {
		if ts, err = say(); err != nil {
			return err
		}
	}
	return a.Store.SetNoticeTS(ctx, in.Key, ts)
}
