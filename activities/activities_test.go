package activities_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// fakeRequests stands in for the request workflows: which were started,
// which were told of a change.
type fakeRequests struct {
	mu       sync.Mutex
	started  map[string]bool
	signals  map[string][]activities.AppointmentUpdate
	startErr error
}

func (f *fakeRequests) Start(_ context.Context, ref activities.MessageRef) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	wid := workflows.RequestWorkflowID(ref.ID)
	if f.startErr != nil {
		return "", false, f.startErr
	}
	if f.started[ref.ID] {
		return wid, false, nil
	}
	f.started[ref.ID] = true
	return wid, true, nil
}

func (f *fakeRequests) AppointmentChanged(_ context.Context, workflowID string, u activities.AppointmentUpdate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals[workflowID] = append(f.signals[workflowID], u)
	return nil
}

// rig is the activities against a real store, the PKB simulator over HTTP
// with a real grant, and the fake Slack, run in Temporal's test activity
// environment.
type rig struct {
	env   *testsuite.TestActivityEnvironment
	set   activities.Set
	st    *store.Store
	sim   *pkbsim.Server
	ds    pkbsim.Dataset
	slack *slackfake.Server
	reqs  *fakeRequests
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.URL(t), bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	r := &rig{st: st, reqs: &fakeRequests{started: map[string]bool{}, signals: map[string][]activities.AppointmentUpdate{}}}
	r.ds = pkbsim.Generate(pkbsim.ScenarioOptions{Name: "small", Seed: 3, Requests: 40, MessagesUntil: time.Now().Add(-time.Minute)})
	const redirect = "http://rebook.test/oauth/callback"
	r.sim = pkbsim.New(pkbsim.Config{ClientID: "c", ClientSecret: "s", RedirectURL: redirect, AutoApprove: true, Seed: 1}, r.ds)
	srv := httptest.NewServer(r.sim)
	t.Cleanup(srv.Close)
	oauth := pkb.OAuth(srv.URL, "c", "s", redirect)
	require.NoError(t, pkbauth.AutoGrant(ctx, oauth, st))
	client, err := pkb.New(pkb.Options{BaseURL: srv.URL, FHIRBaseURL: srv.URL + "/fhir", Tokens: &pkbauth.Tokens{Store: st, ClientID: "c"}})
	require.NoError(t, err)
	r.slack = slackfake.New(nil)
	t.Cleanup(r.slack.Stop)
	for _, ch := range []string{"rebook-triage", "rebook-admin", "rebook-cardiology"} {
		r.slack.AddChannel(ch)
	}
	p := activities.PKB{Client: client, GrantRetryDelay: time.Second}
	sl, links := slackmsg.New("xoxb-test", r.slack.GetAPIURL()), activities.Links{PublicURL: "http://rebook.test"}
	notices := &activities.NoticeActivities{Slack: sl, TriageChannel: "rebook-triage", Links: links}
	r.set = activities.Set{
		Poll:         &activities.PollActivities{PKB: p, Store: st, Requests: r.reqs, States: workflows.ReadModelStates},
		Request:      &activities.RequestActivities{PKB: p},
		Route:        &activities.RouteActivities{Store: st, Slack: sl, TriageChannel: "rebook-triage", Links: links, States: workflows.ReadModelStates},
		Appointments: &activities.AppointmentActivities{PKB: p, Store: st, Requests: r.reqs},
		Notices:      notices,
		Grant:        &activities.GrantActivities{Store: st, OAuth: oauth, Errors: p, Notices: notices, AdminChannel: "rebook-admin", Links: links},
	}
	var ts testsuite.WorkflowTestSuite
	r.env = ts.NewTestActivityEnvironment()
	activities.Register(r.env, r.set)
	return r
}

// run executes one activity and decodes its result into out (if any).
func (r *rig) run(t *testing.T, out any, fn any, args ...any) error {
	t.Helper()
	v, err := r.env.ExecuteActivity(fn, args...)
	if err == nil && out != nil {
		require.NoError(t, v.Get(out))
	}
	return err
}

func (r *rig) expect(kind string) pkbsim.Expectation {
	for _, e := range r.ds.Expect {
		if e.Kind == kind {
			return e
		}
	}
	panic("scenario has no " + kind)
}

func (r *rig) message(id string) pkbsim.Message {
	for _, m := range r.ds.Messages {
		if m.ID == id {
			return m
		}
	}
	panic("no message " + id)
}

func TestPollActivitiesStartEachMessageOnceAndMoveTheCursorForward(t *testing.T) {
	r := newRig(t)
	var cursor int64
	require.NoError(t, r.run(t, &cursor, r.set.Poll.LoadCursor))
	assert.Zero(t, cursor)

	var page []activities.MessageRef
	require.NoError(t, r.run(t, &page, r.set.Poll.ReadMessages, cursor))
	require.NotEmpty(t, page)
	for _, m := range page {
		assert.True(t, r.message(m.ID).Pending, "status=pending reads only open requests")
	}

	var n int
	require.NoError(t, r.run(t, &n, r.set.Poll.StartRequests, page))
	assert.Equal(t, len(page), n)
	row, err := r.st.Request(context.Background(), page[0].ID)
	require.NoError(t, err)
	assert.Equal(t, workflows.StateReceived, row.State, "each started request shows as received")
	assert.Equal(t, workflows.RequestWorkflowID(page[0].ID), row.WorkflowID)
	require.NoError(t, r.st.ChangeState(context.Background(), store.StateChange{MessageID: page[0].ID, State: workflows.StateRouted}, store.AuditEntry{Actor: "t", Action: "t", Subject: row.WorkflowID}))
	require.NoError(t, r.run(t, &n, r.set.Poll.StartRequests, page))
	assert.Zero(t, n, "starting again starts nothing")
	row, err = r.st.Request(context.Background(), page[0].ID)
	require.NoError(t, err)
	assert.Equal(t, workflows.StateRouted, row.State, "and overwrites nothing")

	last := page[len(page)-1].Timestamp
	require.NoError(t, r.run(t, nil, r.set.Poll.AdvanceCursor, last))
	require.NoError(t, r.run(t, nil, r.set.Poll.AdvanceCursor, last-1000))
	require.NoError(t, r.run(t, &cursor, r.set.Poll.LoadCursor))
	assert.Equal(t, last, cursor, "the cursor never moves back")
}

func TestRequestActivitiesReadMatchAndResolve(t *testing.T) {
	r := newRig(t)
	routable := r.expect(pkbsim.KindRoutable)
	m := r.message(routable.MessageID)

	var f activities.MessageFacts
	require.NoError(t, r.run(t, &f, r.set.Request.FetchMessage, activities.MessageRef{ID: m.ID, Timestamp: m.Timestamp}))
	require.True(t, f.Readable)
	assert.Equal(t, string(routable.RequestType), f.Type)
	assert.Equal(t, m.PatientID, f.PatientID)

	var match activities.Match
	require.NoError(t, r.run(t, &match, r.set.Request.MatchAppointment, activities.MatchInput{PatientID: f.PatientID, Start: f.Start, Subject: f.Subject}))
	require.True(t, match.Found, match.Reason)
	assert.Equal(t, routable.AppointmentID, match.AppointmentID)
	assert.Equal(t, routable.Specialty, match.Specialty)

	var id activities.NationalID
	require.NoError(t, r.run(t, &id, r.set.Request.ResolveNationalID, f.PatientID))
	assert.Equal(t, activities.NHSValid, id.Status)

	// What cannot be relied on says why, and is not an error.
	for kind, want := range map[string]string{pkbsim.KindMissingNHSNumber: activities.NHSMissing, pkbsim.KindInvalidNHSNumber: activities.NHSInvalid} {
		msg := r.message(r.expect(kind).MessageID)
		require.NoError(t, r.run(t, &id, r.set.Request.ResolveNationalID, msg.PatientID))
		assert.Equal(t, want, id.Status, kind)
		assert.NotEmpty(t, id.Reason, kind)
	}
	require.NoError(t, r.run(t, &id, r.set.Request.ResolveNationalID, "00000000-0000-0000-0000-000000000000"))
	assert.Equal(t, activities.NHSNoPatient, id.Status)

	amb := r.message(r.expect(pkbsim.KindAmbiguous).MessageID)
	require.NoError(t, r.run(t, &f, r.set.Request.FetchMessage, activities.MessageRef{ID: amb.ID, Timestamp: amb.Timestamp}))
	require.NoError(t, r.run(t, &match, r.set.Request.MatchAppointment, activities.MatchInput{PatientID: f.PatientID, Start: f.Start, Subject: f.Subject}))
	assert.False(t, match.Found)
	assert.Contains(t, match.Reason, "appointments match")

	bad := r.message(r.expect(pkbsim.KindUnreadable).MessageID)
	require.NoError(t, r.run(t, &f, r.set.Request.FetchMessage, activities.MessageRef{ID: bad.ID, Timestamp: bad.Timestamp}))
	assert.False(t, f.Readable)
	assert.NotEmpty(t, f.Reason)
}

func TestAppointmentActivitiesSeeThePASAct(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	e := r.expect(pkbsim.KindRoutable)
	m := r.message(e.MessageID)
	wid := workflows.RequestWorkflowID(m.ID)
	require.NoError(t, r.st.SaveRequest(ctx, store.Request{MessageID: m.ID, WorkflowID: wid, Ref: activities.Ref(m.ID), State: workflows.StateRouted,
		RequestType: string(e.RequestType), AppointmentID: e.AppointmentID, PatientID: m.PatientID, ReceivedAt: time.UnixMilli(m.Timestamp)}))

	in := activities.CheckInput{AppointmentID: e.AppointmentID, PatientID: m.PatientID, RequestType: string(e.RequestType), ReceivedAt: time.UnixMilli(m.Timestamp)}
	var got []activities.AppointmentUpdate
	require.NoError(t, r.run(t, &got, r.set.Appointments.CheckAppointment, in))
	require.Len(t, got, 1)
	assert.NotEqual(t, "cancelled", got[0].Status)

	require.NoError(t, r.sim.Cancel(e.AppointmentID))
	require.NoError(t, r.run(t, &got, r.set.Appointments.CheckAppointment, in))
	assert.Equal(t, "cancelled", got[0].Status)

	var n int
	require.NoError(t, r.run(t, &n, r.set.Appointments.WatchAppointments))
	assert.Positive(t, n)
	require.NotEmpty(t, r.reqs.signals[wid], "the waiting request was told")
	assert.Equal(t, "cancelled", r.reqs.signals[wid][0].Status)
}

func TestRecordStateAndNotices(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	wid := workflows.RequestWorkflowID("msg-1")
	in := activities.RouteInput{MessageID: "msg-1", WorkflowID: wid, ReceivedAt: time.Now(), RequestType: "cancel", Triage: true, Reason: "subject not understood",
		Card: card.Card{WorkflowID: wid, RequestType: "cancel", State: card.Open}}
	var route activities.Route
	require.NoError(t, r.run(t, &route, r.set.Route.RouteToTeam, in))
	assert.Equal(t, activities.TriageTeam, route.Team)
	assert.Equal(t, 24, route.SLAHours, "triage's SLA defaults to 24 h")

	require.NoError(t, r.run(t, nil, r.set.Route.RecordState, activities.StateInput{MessageID: "msg-1", WorkflowID: wid, State: workflows.StateClaimed,
		Actor: "U1", Action: workflows.StateClaimed, ClaimedBy: "U1"}))
	row, err := r.st.Request(ctx, "msg-1")
	require.NoError(t, err)
	assert.Equal(t, workflows.StateClaimed, row.State)
	assert.Equal(t, "U1", row.ClaimedBy)
	trail, err := r.st.AuditTrail(ctx, wid)
	require.NoError(t, err)
	assert.Len(t, trail, 2, "routed, then claimed")

	c := in.Card
	c.Ref, c.State, c.ClaimedBy = route.Ref, card.Claimed, "U1"
	require.NoError(t, r.run(t, nil, r.set.Notices.UpdateCard, activities.CardInput{ChannelID: route.ChannelID, TS: route.TS, Card: c}))
	roots := r.slack.Roots("rebook-triage")
	require.Len(t, roots, 1)
	assert.Equal(t, 1, roots[0].Edits)
	assert.Contains(t, roots[0].Text, route.Ref)

	require.NoError(t, r.run(t, nil, r.set.Notices.Notify, activities.NotifyInput{Text: "Overdue: " + route.Ref}))
	assert.Len(t, r.slack.Roots("rebook-triage"), 2, "a notice without a channel goes to triage")
	err = r.run(t, nil, r.set.Notices.Notify, activities.NotifyInput{Channel: "no-such-channel", Text: "x"})
	assert.ErrorContains(t, err, "not found")
}

func TestGrantActivitiesRefreshAndAskWhenRefused(t *testing.T) {
	r := newRig(t)
	var g activities.GrantInfo
	require.NoError(t, r.run(t, &g, r.set.Grant.LoadGrant, "c"))
	require.True(t, g.Exists && g.Healthy)

	var res activities.RefreshResult
	require.NoError(t, r.run(t, &res, r.set.Grant.RefreshGrant, "c"))
	assert.False(t, res.Refused)
	assert.True(t, res.ExpiresAt.After(time.Now()))

	require.Equal(t, 1, r.sim.RevokeGrants())
	require.NoError(t, r.run(t, &res, r.set.Grant.RefreshGrant, "c"))
	assert.True(t, res.Refused)
	assert.Contains(t, res.Reason, "invalid_grant")
	require.NoError(t, r.run(t, &g, r.set.Grant.LoadGrant, "c"))
	assert.False(t, g.Healthy)
	assert.Equal(t, res.Reason, g.LastError)

	// PKB work now pauses with a retryable error and makes no call.
	err := r.run(t, nil, r.set.Poll.ReadMessages, int64(0))
	assert.ErrorContains(t, err, "access not granted")

	require.NoError(t, r.run(t, nil, r.set.Grant.AskForGrant, activities.AskInput{Reason: res.Reason}))
	asks := r.slack.Roots("rebook-admin")
	require.Len(t, asks, 1)
	assert.Contains(t, asks[0].Text, "http://rebook.test/oauth/start")
}
