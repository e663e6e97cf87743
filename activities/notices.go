package activities

import (
	"context"
	"time"

	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
)

// NoticeActivities redraw cards and post reminders and alerts in Slack.
type NoticeActivities struct {
	Slack *slackmsg.Client
	// Store keeps which keyed notices were posted; without it a retry may
	// post a keyed notice twice.
	Store *store.Store
	// TriageChannel takes notices that name no channel; AdminChannel
	// those that ask for the admins (NotifyInput.ToAdmins).
	TriageChannel string
	AdminChannel  string
	Links         Links
}

// UpdateCard redraws the request's Slack message, with its dashboard link.
func (a *NoticeActivities) UpdateCard(ctx context.Context, in CardInput) error {
	c := in.Card
	c.DashboardURL = a.Links.Request(c.Ref)
	return a.Slack.Update(ctx, in.ChannelID, in.TS, c, time.Now())
}

// Notify posts a reminder or an escalation; no channel means the triage
// channel.
func (a *NoticeActivities) Notify(ctx context.Context, in NotifyInput) error {
	if in.Channel == "" && in.ToAdmins && a.AdminChannel != "" {
		in.Channel = a.AdminChannel
	}
	if in.Channel == "" {
		in.Channel = a.TriageChannel
	}
	ch, err := a.Slack.ChannelID(ctx, in.Channel)
	if err != nil {
		return err
	}
	if in.Key == "" || a.Store == nil {
		_, err = a.Slack.Say(ctx, ch, in.ThreadTS, in.Text)
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
		if ts, err = a.Slack.FindText(ctx, ch, in.ThreadTS, in.Text, before.StartedAt.Add(-time.Minute)); err != nil {
			return err
		}
	}
	if ts == "" {
		if ts, err = a.Slack.Say(ctx, ch, in.ThreadTS, in.Text); err != nil {
			return err
		}
	}
	return a.Store.SetNoticeTS(ctx, in.Key, ts)
}
