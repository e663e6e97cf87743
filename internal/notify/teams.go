package notify

import (
	"context"
	"time"

	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/teams"
)

// TeamsNotifier posts to Teams channels. A card is the root of a thread;
// its id (the root activity's) is the ts the rest of Rebook keeps, and
// the thread's conversation is the channel and that id.
//
// Unlike Slack, Teams lets a bot read no channel history through the Bot
// Connector: a retry whose earlier answer was lost cannot find the
// earlier post, so in that one case a card or notice may appear twice.
type TeamsNotifier struct {
	Client *teams.Client
	Detail card.Detail
}

func conversation(channelID, root string) string { return channelID + ";messageid=" + root }

func (t *TeamsNotifier) Resolve(_ context.Context, channel string) (string, error) {
	return teamsPrefix + channel, nil
}

func (t *TeamsNotifier) FindCard(context.Context, string, string, time.Time) (string, error) {
	return "", nil
}

func (t *TeamsNotifier) Post(ctx context.Context, channelID string, c card.Card, now time.Time) (string, error) {
	_, root, err := t.Client.CreateThread(ctx, channelID, teams.Card(c, now, t.Detail))
	return root, err
}

func (t *TeamsNotifier) Update(ctx context.Context, channelID, ts string, c card.Card, now time.Time) error {
	return t.Client.Update(ctx, conversation(channelID, ts), ts, teams.Card(c, now, t.Detail))
}

func (t *TeamsNotifier) Say(ctx context.Context, channelID, threadTS, text string) (string, error) {
	if threadTS == "" {
		_, root, err := t.Client.CreateThread(ctx, channelID, teams.Notice(text))
		return root, err
	}
	return t.Client.Reply(ctx, conversation(channelID, threadTS), teams.Notice(text))
}

func (t *TeamsNotifier) Ask(ctx context.Context, channelID, threadTS, text string, q card.Question) (string, error) {
	if threadTS == "" {
		_, root, err := t.Client.CreateThread(ctx, channelID, teams.Question(text, q))
		return root, err
	}
	return t.Client.Reply(ctx, conversation(channelID, threadTS), teams.Question(text, q))
}

func (t *TeamsNotifier) FindText(context.Context, string, string, string, time.Time) (string, error) {
	return "", nil
}

func (t *TeamsNotifier) Check(ctx context.Context, channel string) error {
	return t.Client.CheckChannel(ctx, channel)
}
