// Package slackmsg posts and edits Rebook's Slack messages: one Block Kit
// message per request in its team's channel, carrying the least a team
// needs (at the default detail level: request type, specialty, clinic,
// appointment time, an opaque reference, age, a dashboard link) and the
// Claim / Done / Can't action buttons. No NHS number, name, patient id or
// message text ever goes to Slack, at any level.
package slackmsg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"go.temporal.io/sdk/client"

	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/metrics"
)

// Button action ids. Their value is the request's workflow id.
const (
	ActionClaim      = "rebook_claim"
	ActionDone       = "rebook_done"
	ActionCantAction = "rebook_cant_action"
	// The answers to "Is this the rebooking?": their value is the
	// request's workflow id, "|", and the candidate appointment's id.
	ActionRebookingYes = "rebook_rebooking_yes"
	ActionRebookingNo  = "rebook_rebooking_no"
)

// QuestionValue is the value of an answer button: the workflow id and the
// candidate appointment.
func QuestionValue(q card.Question) string { return q.WorkflowID + "|" + q.Candidate }

// Detail is how much of a request its card shows (REBOOK_SLACK_DETAIL);
// package card owns it, since Teams shows the same.
type Detail = card.Detail

// The detail levels.
const (
	DetailAppointment = card.DetailAppointment
	DetailMinimal     = card.DetailMinimal
)

// ParseDetail reads a detail level; empty is the default.
func ParseDetail(v string) (Detail, error) { return card.ParseDetail(v) }

// Text is the notification and fallback text; it carries the reference so
// a lost post can be found again in the channel's history.
func Text(c card.Card, d Detail) string {
	if d == DetailMinimal {
		return c.Title() + " " + c.Ref
	}
	return fmt.Sprintf("%s %s: %s, %s", c.Title(), c.Ref, card.OrDash(c.Specialty), card.OrDash(c.Clinic))
}

// Blocks lays the card out at a detail level.
func Blocks(c card.Card, now time.Time, d Detail) []slack.Block {
	when, state, orDash := c.When(), c.Status(), card.OrDash
	fields := []*slack.TextBlockObject{
		slack.NewTextBlockObject(slack.MarkdownType, "*Specialty*\n"+orDash(c.Specialty), false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "*Clinic*\n"+orDash(c.Clinic), false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "*Appointment*\n"+when, false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "*Reference*\n"+c.Ref, false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "*Received*\n"+card.Age(c.ReceivedAt, now), false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "*Status*\n"+state, false, false),
	}
	if d == DetailMinimal {
		fields = fields[3:]
		c.CloseNote = ""
	}
	bs := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, c.Title(), false, false)),
		slack.NewSectionBlock(nil, fields, nil),
	}
	var notes []string
	if c.Reason != "" {
		notes = append(notes, "*Why triage:* "+c.Reason)
	}
	for _, f := range c.Flags {
		notes = append(notes, ":warning: "+f)
	}
	if c.CloseNote != "" {
		notes = append(notes, c.CloseNote)
	}
	if c.DashboardURL != "" {
		notes = append(notes, "<"+c.DashboardURL+"|Open in Rebook>")
	}
	if len(notes) > 0 {
		bs = append(bs, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Join(notes, "\n"), false, false), nil, nil))
	}
	if c.State.Actionable() {
		var btns []slack.BlockElement
		if c.State != card.Claimed {
			btns = append(btns, slack.NewButtonBlockElement(ActionClaim, c.WorkflowID, slack.NewTextBlockObject(slack.PlainTextType, "Claim", false, false)))
		}
		done := slack.NewButtonBlockElement(ActionDone, c.WorkflowID, slack.NewTextBlockObject(slack.PlainTextType, "Done", false, false))
		done.Style = slack.StylePrimary
		cant := slack.NewButtonBlockElement(ActionCantAction, c.WorkflowID, slack.NewTextBlockObject(slack.PlainTextType, "Can't action", false, false))
		cant.Style = slack.StyleDanger
		cant.Confirm = slack.NewConfirmationBlockObject(
			slack.NewTextBlockObject(slack.PlainTextType, "Close without action?", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "The request will be closed as not actionable, under your name.", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Close it", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false))
		btns = append(btns, done, cant)
		bs = append(bs, slack.NewActionBlock("rebook_actions", btns...))
	}
	return bs
}

// Client is the Slack Web API calls Rebook makes.
type Client struct {
	api     *slack.Client
	mu      sync.Mutex
	ids     map[string]string // channel name -> id
	members map[string]bool   // channel id -> the app is a member
	// Detail is how much each card shows; the default when empty.
	Detail Detail
}

// New makes a Client for token against apiURL (Slack's, or a fake's).
func New(token, apiURL string) *Client { return NewCounted(token, apiURL, nil) }

// NewCounted is New with each call counted in m by method and outcome.
func NewCounted(token, apiURL string, m client.MetricsHandler) *Client {
	opts := []slack.Option{}
	if m != nil {
		opts = append(opts, slack.OptionHTTPClient(&http.Client{Transport: metrics.SlackTransport(m, nil)}))
	}
	if apiURL != "" {
		if !strings.HasSuffix(apiURL, "/") {
			apiURL += "/"
		}
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	return &Client{api: slack.New(token, opts...), ids: map[string]string{}, members: map[string]bool{}}
}

// ErrChannelNotFound means no channel by that name is visible to the app:
// a typo, an archived channel, or a private one it was not invited to.
var ErrChannelNotFound = errors.New("channel_not_found")

// undeliverable are Slack's answers that no retry will change: the
// channel is wrong, archived, or closed to the app.
var undeliverable = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "channel_is_archived": true,
	"restricted_action": true, "restricted_action_read_only_channel": true, "restricted_action_thread_only_channel": true,
	"restricted_action_non_threadable_channel": true, "ekm_access_denied": true, "team_access_not_granted": true,
}

// Undeliverable says whether err means the channel cannot take the app's
// posts, and Slack's code for why.
func Undeliverable(err error) (string, bool) {
	if errors.Is(err, ErrChannelNotFound) {
		return ErrChannelNotFound.Error(), true
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && undeliverable[se.Err] {
		return se.Err, true
	}
	return "", false
}

// CheckChannel says why the app could not post to a channel, or nil: it
// must exist, not be archived, and have the app as a member.
func (c *Client) CheckChannel(ctx context.Context, name string) error {
	id, err := c.ChannelID(ctx, name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	member, known := c.members[id]
	c.mu.Unlock()
	if known && !member {
		return fmt.Errorf("slack: the Rebook app is not in #%s (invite it): %w", strings.TrimPrefix(name, "#"), slack.SlackErrorResponse{Err: "not_in_channel"})
	}
	return nil
}

// ChannelID resolves a channel name to its id (ids pass through), listing
// the workspace's channels when the name is new.
func (c *Client) ChannelID(ctx context.Context, name string) (string, error) {
	name = strings.TrimPrefix(name, "#")
	if len(name) >= 9 && (name[0] == 'C' || name[0] == 'G') && strings.ToUpper(name) == name {
		return name, nil
	}
	c.mu.Lock()
	id, ok := c.ids[name]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	params := &slack.GetConversationsParameters{ExcludeArchived: true, Limit: 1000, Types: []string{"public_channel", "private_channel"}}
	for {
		chans, next, err := c.api.GetConversationsContext(ctx, params)
		if err != nil {
			return "", fmt.Errorf("slack: conversations.list: %w", err)
		}
		c.mu.Lock()
		for _, ch := range chans {
			c.ids[ch.Name] = ch.ID
			c.members[ch.ID] = ch.IsMember
		}
		id, ok = c.ids[name]
		c.mu.Unlock()
		if ok {
			return id, nil
		}
		if next == "" {
			return "", fmt.Errorf("slack: channel %q not found (is the Rebook app invited to it?): %w", name, ErrChannelNotFound)
		}
		params.Cursor = next
	}
}

// FindByRef looks for a root message carrying ref in the channel since
// oldest: how a post whose response was lost is found instead of repeated.
func (c *Client) FindByRef(ctx context.Context, channelID, ref string, oldest time.Time) (string, bool, error) {
	params := &slack.GetConversationHistoryParameters{ChannelID: channelID, Limit: 200, Oldest: fmt.Sprintf("%d.000000", oldest.Unix())}
	for {
		resp, err := c.api.GetConversationHistoryContext(ctx, params)
		if err != nil {
			return "", false, fmt.Errorf("slack: conversations.history: %w", err)
		}
		for _, m := range resp.Messages {
			if strings.Contains(m.Text, " "+ref+":") {
				return m.Timestamp, true, nil
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			return "", false, nil
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
}

// FindText looks for a message with exactly this text, in the thread
// when threadTS is set or else at the channel's top level, since oldest:
// how a notice whose response was lost is found instead of repeated.
func (c *Client) FindText(ctx context.Context, channelID, threadTS, text string, oldest time.Time) (string, error) {
	since := fmt.Sprintf("%d.000000", oldest.Unix())
	cursor := ""
	for {
		var msgs []slack.Message
		var more bool
		var next string
		var err error
		if threadTS != "" {
			msgs, more, next, err = c.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
				ChannelID: channelID, Timestamp: threadTS, Oldest: since, Cursor: cursor, Limit: 200})
		} else {
			var resp *slack.GetConversationHistoryResponse
			resp, err = c.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: channelID, Oldest: since, Cursor: cursor, Limit: 200})
			if err == nil {
				msgs, more, next = resp.Messages, resp.HasMore, resp.ResponseMetaData.NextCursor
			}
		}
		if err != nil {
			return "", fmt.Errorf("slack: finding a notice: %w", err)
		}
		for _, m := range msgs {
			if m.Text == text && m.Timestamp != threadTS {
				return m.Timestamp, nil
			}
		}
		if !more || next == "" {
			return "", nil
		}
		cursor = next
	}
}

// Post posts a card and returns its channel id and timestamp. Neither it
// nor Say lets Slack unfurl links: a card's link is to a signed-in page,
// and a preview would show nothing useful or, for a page that later
// changes, more than was meant.
func (c *Client) Post(ctx context.Context, channelID string, cd card.Card, now time.Time) (string, string, error) {
	ch, ts, err := c.api.PostMessageContext(ctx, channelID, slack.MsgOptionText(Text(cd, c.Detail), false), slack.MsgOptionBlocks(Blocks(cd, now, c.Detail)...),
		slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
	if err != nil {
		return "", "", fmt.Errorf("slack: chat.postMessage: %w", err)
	}
	return ch, ts, nil
}

// Update redraws a posted card.
func (c *Client) Update(ctx context.Context, channelID, ts string, cd card.Card, now time.Time) error {
	_, _, _, err := c.api.UpdateMessageContext(ctx, channelID, ts, slack.MsgOptionText(Text(cd, c.Detail), false), slack.MsgOptionBlocks(Blocks(cd, now, c.Detail)...))
	if err != nil {
		return fmt.Errorf("slack: chat.update: %w", err)
	}
	return nil
}

// Say posts plain text to a channel, in a thread when threadTS is set.
func (c *Client) Say(ctx context.Context, channelID, threadTS, text string) (string, error) {
	return c.say(ctx, channelID, threadTS, text)
}

// Ask posts a question's text with its Yes and No buttons, in a thread
// when threadTS is set.
func (c *Client) Ask(ctx context.Context, channelID, threadTS, text string, q card.Question) (string, error) {
	v := QuestionValue(q)
	yes := slack.NewButtonBlockElement(ActionRebookingYes, v, slack.NewTextBlockObject(slack.PlainTextType, "Yes, it is", false, false)).WithStyle(slack.StylePrimary)
	no := slack.NewButtonBlockElement(ActionRebookingNo, v, slack.NewTextBlockObject(slack.PlainTextType, "No", false, false))
	return c.say(ctx, channelID, threadTS, text, slack.MsgOptionBlocks(
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil), slack.NewActionBlock("rebook_question", yes, no)))
}

// say posts text, with no link or media unfurled, and more options.
func (c *Client) say(ctx context.Context, channelID, threadTS, text string, more ...slack.MsgOption) (string, error) {
	opts := append([]slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl()}, more...)
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	_, ts, err := c.api.PostMessageContext(ctx, channelID, opts...)
	if err != nil {
		return "", fmt.Errorf("slack: chat.postMessage: %w", err)
	}
	return ts, nil
}

// Whisper shows text to one user only.
func (c *Client) Whisper(ctx context.Context, channelID, userID, text string) error {
	_, err := c.api.PostEphemeralContext(ctx, channelID, userID, slack.MsgOptionText(text, false))
	if err != nil {
		return fmt.Errorf("slack: chat.postEphemeral: %w", err)
	}
	return nil
}
