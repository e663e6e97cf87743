package slackmsg_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/slackmsg"
)

// Cards and notices are posted with link and media unfurling off: no
// preview of a request page is ever drawn in the channel.
func TestPostsDoNotUnfurl(t *testing.T) {
	fake := slackfake.New(nil)
	t.Cleanup(fake.Stop)
	ch := fake.AddChannel("rebook-triage")
	c := slackmsg.New("xoxb-test", fake.GetAPIURL())
	ctx := context.Background()
	_, ts, err := c.Post(ctx, ch, card.Card{Ref: "RB-1", WorkflowID: "wf", DashboardURL: "https://rebook.example/requests/RB-1"}, time.Now())
	require.NoError(t, err)
	_, err = c.Say(ctx, ch, ts, "Reminder: https://rebook.example/requests/RB-1")
	require.NoError(t, err)
	msgs := fake.Messages()
	require.Len(t, msgs, 2)
	for _, m := range msgs {
		assert.Equal(t, [2]string{"false", "false"}, m.Unfurl, "%q", m.Text)
	}
}
