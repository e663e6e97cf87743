package activities

import (
	"context"
	"time"

	"github.com/rebookhq/rebook/internal/slackmsg"
)

// NoticeActivities redraw cards and post reminders and alerts in Slack.
type NoticeActivities struct {
	Slack *slackmsg.Client
	// TriageChannel takes notices that name no channel.
	TriageChannel string
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
	if in.Channel == "" {
		in.Channel = a.TriageChannel
	}
	ch, err := a.Slack.ChannelID(ctx, in.Channel)
	if err != nil {
		return err
	}
	_, err = a.Slack.Say(ctx, ch, in.ThreadTS, in.Text)
	return err
}
