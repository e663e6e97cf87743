package slackmsg_test

import (
	"context"
	"encoding/json"
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

// What a card shows at each detail level, as Slack receives it (text and
// blocks, through the fake's API): the minimal level drops the specialty,
// clinic, appointment time and staff note, and neither level names the
// patient.
func TestDetailLevels(t *testing.T) {
	fake := slackfake.New(nil)
	t.Cleanup(fake.Stop)
	ch := fake.AddChannel("rebook-sexual-health")
	start := time.Date(2027, 3, 3, 9, 30, 0, 0, time.UTC)
	cd := card.Card{Ref: "RB-1", WorkflowID: "wf", RequestType: "cancel", Specialty: "Genitourinary Medicine", Clinic: "Clinic 4B",
		Start: start, ReceivedAt: start.Add(-48 * time.Hour), State: card.Closed, ClosedBy: "U1", CloseNote: "staff typed this", DashboardURL: "https://rebook.example/requests/RB-1"}
	shown := func(d slackmsg.Detail) string {
		c := slackmsg.New("xoxb-test", fake.GetAPIURL())
		c.Detail = d
		_, ts, err := c.Post(context.Background(), ch, cd, start)
		require.NoError(t, err)
		for _, m := range fake.Messages() {
			if m.TS == ts {
				raw, err := json.Marshal(m.Blocks)
				require.NoError(t, err)
				return m.Text + "\n" + string(raw)
			}
		}
		t.Fatalf("post %s not found", ts)
		return ""
	}
	full, minimal := shown(slackmsg.DetailAppointment), shown(slackmsg.DetailMinimal)
	for _, v := range []string{"Genitourinary Medicine", "Clinic 4B", "Wed 3 Mar 2027 09:30", "staff typed this"} {
		assert.Contains(t, full, v)
		assert.NotContains(t, minimal, v)
	}
	for _, v := range []string{"RB-1", "Cancel request", "2 days ago", "Open in Rebook"} {
		assert.Contains(t, minimal, v)
	}

	d, err := slackmsg.ParseDetail("")
	require.NoError(t, err)
	assert.Equal(t, slackmsg.DetailAppointment, d, "the default")
	_, err = slackmsg.ParseDetail("nhs-number")
	assert.Error(t, err)
}
