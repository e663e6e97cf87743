package activities_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/notify"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
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
