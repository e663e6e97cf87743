package activities_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/dev/teamsfake"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/notify"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/teams"
	"github.com/rebookhq/rebook/workflows"
)

// A post whose answer is lost is found again on retry, not repeated.
func TestRouteToTeamPostsOnceDespiteALostAnswer(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.URL(t), bytes.Repeat([]byte{1}, 32))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	require.NoError(t, st.ReplaceRules(ctx, []store.Rule{{Specialty: "Cardiology", Team: "Cardiology bookings", SlackChannel: "rebook-cardiology", SLAHours: 48}}))
	fake := slackfake.New(nil)
	t.Cleanup(fake.Stop)
	fake.AddChannel("rebook-cardiology")
	fake.AddChannel("rebook-triage")
	a := &activities.RouteActivities{Store: st, Out: notify.Router{Slack: slackmsg.New("xoxb-test", fake.GetAPIURL())}, TriageChannel: "rebook-triage",
		Links: activities.Links{PublicURL: "http://rebook.test"}, States: workflows.ReadModelStates}

	in := activities.RouteInput{MessageID: "msg-1", WorkflowID: workflows.RequestWorkflowID("msg-1"), ReceivedAt: time.Now().Add(-time.Hour),
		PatientID: "pat-1", RequestType: "cancel", Specialty: "Cardiology", SpecialtyCode: "320", Clinic: "Clinic A",
		AppointmentID: "appt-1", Start: time.Date(2027, 3, 14, 9, 30, 0, 0, time.UTC)}
	fake.FailNext("chat.postMessage", 1)
	_, err = a.RouteToTeam(ctx, in)
	require.Error(t, err, "the answer was lost")
	require.Len(t, fake.Roots(""), 1, "but the post happened")

	r, err := a.RouteToTeam(ctx, in)
	require.NoError(t, err)
	assert.Len(t, fake.Roots(""), 1, "the retry found the post instead of posting again")
	assert.Equal(t, fake.Roots("")[0].TS, r.TS)
	assert.Equal(t, "Cardiology bookings", r.Team)
	assert.Equal(t, 48, r.SLAHours)

	again, err := a.RouteToTeam(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, r.TS, again.TS)
	assert.Len(t, fake.Roots(""), 1)

	row, err := st.Request(ctx, "msg-1")
	require.NoError(t, err)
	assert.Equal(t, r.TS, row.SlackTS)
	assert.Equal(t, workflows.StateRouted, row.State)
	assert.Regexp(t, `^RB-[0-9A-Z]{4}-[0-9A-Z]{4}$`, row.Ref, "a new request's reference is 40 random bits")
	assert.Equal(t, row.Ref, r.Ref)
	assert.Equal(t, r.Ref, again.Ref, "a retry keeps the reference")
	assert.Contains(t, fake.Roots("")[0].Text, row.Ref)
	trail, err := st.AuditTrail(ctx, in.WorkflowID)
	require.NoError(t, err)
	assert.Len(t, trail, 1, "the routing is audited once, however often it is retried")

	// No rule and no catch-all: triage, with the reason.
	in2 := in
	in2.MessageID, in2.WorkflowID, in2.Specialty = "msg-2", workflows.RequestWorkflowID("msg-2"), "Urology"
	r2, err := a.RouteToTeam(ctx, in2)
	require.NoError(t, err)
	assert.True(t, r2.Triage)
	assert.Equal(t, activities.TriageTeam, r2.Team)
	assert.Contains(t, r2.Reason, "no routing rule")
	assert.Len(t, fake.Roots("rebook-triage"), 1)
}

// A Teams channel the bot is not in (the app not installed in that team)
// sends the request to triage at once with Teams' reason, and the admins
// are told once for the channel, however many requests meet it; a Teams
// throttle is retried, not taken for a dead channel.
func TestTeamsRefusedChannelGoesToTriage(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.URL(t), bytes.Repeat([]byte{1}, 32))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	const ch = "19:cardiology@thread.tacv2"
	require.NoError(t, st.ReplaceRules(ctx, []store.Rule{{Specialty: "Cardiology", Team: "Cardiology bookings", SlackChannel: "teams:" + ch, SLAHours: 48}}))
	sl := slackfake.New(nil)
	t.Cleanup(sl.Stop)
	sl.AddChannel("rebook-triage")
	sl.AddChannel("rebook-admin")
	tf := teamsfake.New("app-1", "tenant-1", "secret")
	t.Cleanup(tf.Close)
	out := notify.Router{Slack: slackmsg.New("xoxb-test", sl.GetAPIURL()), Teams: &notify.TeamsNotifier{
		Client: teams.New(teams.Config{AppID: "app-1", AppPassword: "secret", TenantID: "tenant-1", LoginBase: tf.LoginBase(), ServiceURL: tf.ServiceURL()})}}
	notices := &activities.NoticeActivities{Out: out, Store: st, TriageChannel: "rebook-triage", AdminChannel: "rebook-admin"}
	a := &activities.RouteActivities{Store: st, Out: out, TriageChannel: "rebook-triage", AdminChannel: "rebook-admin", Notices: notices,
		Links: activities.Links{PublicURL: "http://rebook.test"}, States: workflows.ReadModelStates}
	input := func(id string) activities.RouteInput {
		return activities.RouteInput{MessageID: id, WorkflowID: workflows.RequestWorkflowID(id), ReceivedAt: time.Now(), RequestType: "cancel", Specialty: "Cardiology"}
	}

	for _, id := range []string{"msg-1", "msg-2"} {
		r, err := a.RouteToTeam(ctx, input(id))
		require.NoError(t, err)
		assert.True(t, r.Triage)
		assert.Equal(t, "Teams would not take the card in the Teams channel "+ch+" (BotNotInConversationRoster)", r.Reason)
	}
	assert.Len(t, sl.Roots("rebook-triage"), 2, "both cards are in triage")
	told := sl.Roots("rebook-admin")
	require.Len(t, told, 1, "the admins are told once for the channel")
	assert.Contains(t, told[0].Text, "BotNotInConversationRoster")

	tf.Install(ch)
	tf.Fail(http.MethodPost, "/v3/conversations", http.StatusTooManyRequests, "Throttled", "2")
	_, err = a.RouteToTeam(ctx, input("msg-3"))
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae, "a throttled post is retried by Temporal")
	assert.Equal(t, 2*time.Second, ae.NextRetryDelay(), "after the wait Teams asked for")
	r, err := a.RouteToTeam(ctx, input("msg-3"))
	require.NoError(t, err)
	assert.False(t, r.Triage)
	assert.Len(t, tf.Threads(ch), 1)
}
