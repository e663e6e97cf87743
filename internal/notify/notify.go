// Package notify is where a request's card and notices go: Slack or
// Microsoft Teams, chosen by the channel a routing rule (or the triage or
// admin setting) names. `slack:C0123…`, a bare Slack name or id, or
// `teams:19:…@thread.tacv2`. The card is built once (package card) and
// laid out by each service's package; this one only dispatches.
package notify

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/teams"
)

// Service is Slack or Teams.
type Service string

const (
	Slack Service = "slack"
	Teams Service = "teams"
)

var (
	slackChannel = regexp.MustCompile(`^([a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{8,})$`)
	teamsChannel = regexp.MustCompile(`^19:[A-Za-z0-9_.-]+@thread\.(tacv2|skype)$`)
)

// Parse splits a channel setting into its service and the service's own
// channel name or id, or says what is wrong with it.
func Parse(v string) (Service, string, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "#")
	switch {
	case strings.HasPrefix(v, "teams:"):
		id := strings.TrimPrefix(v, "teams:")
		if !teamsChannel.MatchString(id) {
			return "", "", fmt.Errorf("%q is not a Teams channel id (teams:19:…@thread.tacv2)", v)
		}
		return Teams, id, nil
	case strings.HasPrefix(v, "slack:"):
		v = strings.TrimPrefix(strings.TrimPrefix(v, "slack:"), "#")
	}
	if !slackChannel.MatchString(v) {
		return "", "", fmt.Errorf("%q is not a Slack channel name (lower case, digits, - and _) or id, nor teams:<channel id>", v)
	}
	return Slack, v, nil
}

// Valid says whether v is a channel setting Parse reads.
func Valid(v string) bool { _, _, err := Parse(v); return err == nil }

// Notifier posts and edits a request's card and its thread's notices.
// Channel ids are the ones Resolve returns; ts is the card's or notice's
// id in its service.
type Notifier interface {
	Resolve(ctx context.Context, channel string) (string, error)
	// FindCard finds a card for ref posted since oldest, for a retry
	// whose earlier answer was lost; "" when there is none.
	FindCard(ctx context.Context, channelID, ref string, oldest time.Time) (string, error)
	Post(ctx context.Context, channelID string, c card.Card, now time.Time) (string, error)
	Update(ctx context.Context, channelID, ts string, c card.Card, now time.Time) error
	Say(ctx context.Context, channelID, threadTS, text string) (string, error)
	Ask(ctx context.Context, channelID, threadTS, text string, q card.Question) (string, error)
	// FindText finds a notice with this text since oldest, as FindCard.
	FindText(ctx context.Context, channelID, threadTS, text string, oldest time.Time) (string, error)
	// Check says whether a channel can take Rebook's posts.
	Check(ctx context.Context, channel string) error
}

// Undeliverable says whether err is a service refusing the channel itself
// (gone, archived, the app not in it), and the service's code for why.
func Undeliverable(err error) (string, bool) {
	if code, ok := slackmsg.Undeliverable(err); ok {
		return code, true
	}
	return teams.Undeliverable(err)
}

// ErrNotConfigured is a channel of a service Rebook has no credentials for.
var ErrNotConfigured = errors.New("notify: no credentials for this channel's service")

// Router sends each channel's posts to its service.
type Router struct {
	Slack *slackmsg.Client
	Teams *TeamsNotifier
}

// teamsPrefix marks a resolved Teams channel id, so every later call
// knows its service from the id alone.
const teamsPrefix = "teams:"

func (r Router) pick(channelID string) (Notifier, string, error) {
	if id, ok := strings.CutPrefix(channelID, teamsPrefix); ok {
		if r.Teams == nil {
			return nil, "", fmt.Errorf("%w (Teams: set TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID)", ErrNotConfigured)
		}
		return r.Teams, id, nil
	}
	if r.Slack == nil {
		return nil, "", fmt.Errorf("%w (Slack: set SLACK_BOT_TOKEN)", ErrNotConfigured)
	}
	return slackNotifier{r.Slack}, strings.TrimPrefix(channelID, "slack:"), nil
}

// Resolve reads a channel setting and returns the id posts go to.
func (r Router) Resolve(ctx context.Context, channel string) (string, error) {
	svc, id, err := Parse(channel)
	if err != nil {
		return "", err
	}
	if svc == Teams {
		if r.Teams == nil {
			return "", fmt.Errorf("%w (Teams: set TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID)", ErrNotConfigured)
		}
		return teamsPrefix + id, nil
	}
	n, id, err := r.pick(id)
	if err != nil {
		return "", err
	}
	return n.Resolve(ctx, id)
}

func (r Router) FindCard(ctx context.Context, channelID, ref string, oldest time.Time) (string, error) {
	n, id, err := r.pick(channelID)
	if err != nil {
		return "", err
	}
	return n.FindCard(ctx, id, ref, oldest)
}

func (r Router) Post(ctx context.Context, channelID string, c card.Card, now time.Time) (string, error) {
	n, id, err := r.pick(channelID)
	if err != nil {
		return "", err
	}
	return n.Post(ctx, id, c, now)
}

func (r Router) Update(ctx context.Context, channelID, ts string, c card.Card, now time.Time) error {
	n, id, err := r.pick(channelID)
	if err != nil {
		return err
	}
	return n.Update(ctx, id, ts, c, now)
}

func (r Router) Say(ctx context.Context, channelID, threadTS, text string) (string, error) {
	n, id, err := r.pick(channelID)
	if err != nil {
		return "", err
	}
	return n.Say(ctx, id, threadTS, text)
}

func (r Router) Ask(ctx context.Context, channelID, threadTS, text string, q card.Question) (string, error) {
	n, id, err := r.pick(channelID)
	if err != nil {
		return "", err
	}
	return n.Ask(ctx, id, threadTS, text, q)
}

func (r Router) FindText(ctx context.Context, channelID, threadTS, text string, oldest time.Time) (string, error) {
	n, id, err := r.pick(channelID)
	if err != nil {
		return "", err
	}
	return n.FindText(ctx, id, threadTS, text, oldest)
}

// Check reads a channel setting and asks its service whether the channel
// can take posts.
func (r Router) Check(ctx context.Context, channel string) error {
	id, err := r.Resolve(ctx, channel)
	if err != nil {
		return err
	}
	n, id, err := r.pick(id)
	if err != nil {
		return err
	}
	return n.Check(ctx, id)
}

// slackNotifier is slackmsg.Client as a Notifier.
type slackNotifier struct{ c *slackmsg.Client }

func (s slackNotifier) Resolve(ctx context.Context, channel string) (string, error) {
	return s.c.ChannelID(ctx, channel)
}

func (s slackNotifier) FindCard(ctx context.Context, channelID, ref string, oldest time.Time) (string, error) {
	ts, _, err := s.c.FindByRef(ctx, channelID, ref, oldest)
	return ts, err
}

func (s slackNotifier) Post(ctx context.Context, channelID string, c card.Card, now time.Time) (string, error) {
	_, ts, err := s.c.Post(ctx, channelID, c, now)
	return ts, err
}

func (s slackNotifier) Update(ctx context.Context, channelID, ts string, c card.Card, now time.Time) error {
	return s.c.Update(ctx, channelID, ts, c, now)
}

func (s slackNotifier) Say(ctx context.Context, channelID, threadTS, text string) (string, error) {
	return s.c.Say(ctx, channelID, threadTS, text)
}

func (s slackNotifier) Ask(ctx context.Context, channelID, threadTS, text string, q card.Question) (string, error) {
	return s.c.Ask(ctx, channelID, threadTS, text, q)
}

func (s slackNotifier) FindText(ctx context.Context, channelID, threadTS, text string, oldest time.Time) (string, error) {
	return s.c.FindText(ctx, channelID, threadTS, text, oldest)
}

func (s slackNotifier) Check(ctx context.Context, channel string) error {
	return s.c.CheckChannel(ctx, channel)
}
