package activities_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/testrig"
	"github.com/rebookhq/rebook/internal/refs"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/rebookhq/rebook/workflows"
)

type rig struct {
	*testrig.Rig
	env *testsuite.TestActivityEnvironment
}

func newRig(t *testing.T) *rig {
	r := &rig{Rig: testrig.New(t)}
	var ts testsuite.WorkflowTestSuite
	r.env = ts.NewTestActivityEnvironment()
	activities.Register(r.env, r.Set)
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

func TestPollActivitiesStartEachMessageOnceAndMoveTheCursorForward(t *testing.T) {
	r := newRig(t)
	var cursor int64
	require.NoError(t, r.run(t, &cursor, r.Set.Poll.LoadCursor))
	assert.Zero(t, cursor)

	var page []activities.MessageRef
	require.NoError(t, r.run(t, &page, r.Set.Poll.ReadMessages, cursor))
	require.NotEmpty(t, page)
	for _, m := range page {
		assert.True(t, r.Message(m.ID).Pending, "status=pending reads only open requests")
	}

	var n int
	require.NoError(t, r.run(t, &n, r.Set.Poll.StartRequests, page))
	assert.Equal(t, len(page), n)
	row, err := r.Store.Request(context.Background(), page[0].ID)
	require.NoError(t, err)
	assert.Equal(t, workflows.StateReceived, row.State, "each started request shows as received")
	assert.Equal(t, workflows.RequestWorkflowID(page[0].ID), row.WorkflowID)
	require.NoError(t, r.Store.ChangeState(context.Background(), store.StateChange{MessageID: page[0].ID, State: workflows.StateRouted}, store.AuditEntry{Actor: "t", Action: "t", Subject: row.WorkflowID}))
	require.NoError(t, r.run(t, &n, r.Set.Poll.StartRequests, page))
	assert.Zero(t, n, "starting again starts nothing")
	row, err = r.Store.Request(context.Background(), page[0].ID)
	require.NoError(t, err)
	assert.Equal(t, workflows.StateRouted, row.State, "and overwrites nothing")

	last := page[len(page)-1].Timestamp
	require.NoError(t, r.run(t, nil, r.Set.Poll.AdvanceCursor, last))
	require.NoError(t, r.run(t, nil, r.Set.Poll.AdvanceCursor, last-1000))
	require.NoError(t, r.run(t, &cursor, r.Set.Poll.LoadCursor))
	assert.Equal(t, last, cursor, "the cursor never moves back")
}

func TestRequestActivitiesReadMatchAndResolve(t *testing.T) {
	r := newRig(t)
	routable := r.Expect(pkbsim.KindRoutable)
	m := r.Message(routable.MessageID)

	var f activities.MessageFacts
	require.NoError(t, r.run(t, &f, r.Set.Request.FetchMessage, activities.MessageRef{ID: m.ID, Timestamp: m.Timestamp}))
	require.True(t, f.Readable)
	assert.Equal(t, string(routable.RequestType), f.Type)
	assert.Equal(t, m.PatientID, f.PatientID)

	var match activities.Match
	require.NoError(t, r.run(t, &match, r.Set.Request.MatchAppointment, activities.MatchInput{PatientID: f.PatientID, Start: f.Start, Subject: f.Subject}))
	require.True(t, match.Found, match.Reason)
	assert.Equal(t, routable.AppointmentID, match.AppointmentID)
	assert.Equal(t, routable.Specialty, match.Specialty)

	var id activities.NationalID
	require.NoError(t, r.run(t, &id, r.Set.Request.ResolveNationalID, f.PatientID))
	assert.Equal(t, activities.NHSValid, id.Status)

	// What cannot be relied on says why, and is not an error.
	for kind, want := range map[string]string{pkbsim.KindMissingNHSNumber: activities.NHSMissing, pkbsim.KindInvalidNHSNumber: activities.NHSInvalid} {
		msg := r.Message(r.Expect(kind).MessageID)
		require.NoError(t, r.run(t, &id, r.Set.Request.ResolveNationalID, msg.PatientID))
		assert.Equal(t, want, id.Status, kind)
		assert.NotEmpty(t, id.Reason, kind)
	}
	require.NoError(t, r.run(t, &id, r.Set.Request.ResolveNationalID, "00000000-0000-0000-0000-000000000000"))
	assert.Equal(t, activities.NHSNoPatient, id.Status)

	amb := r.Message(r.Expect(pkbsim.KindAmbiguous).MessageID)
	require.NoError(t, r.run(t, &f, r.Set.Request.FetchMessage, activities.MessageRef{ID: amb.ID, Timestamp: amb.Timestamp}))
	require.NoError(t, r.run(t, &match, r.Set.Request.MatchAppointment, activities.MatchInput{PatientID: f.PatientID, Start: f.Start, Subject: f.Subject}))
	assert.False(t, match.Found)
	assert.Contains(t, match.Reason, "appointments match")

	bad := r.Message(r.Expect(pkbsim.KindUnreadable).MessageID)
	require.NoError(t, r.run(t, &f, r.Set.Request.FetchMessage, activities.MessageRef{ID: bad.ID, Timestamp: bad.Timestamp}))
	assert.False(t, f.Readable)
	assert.NotEmpty(t, f.Reason)
}

// The appointment a request names is found among look-alikes: another on
// the same day with the same subject, another at the same time in
// another specialty, and many more, so that the right one is beyond the
// search's first page. Two identical bookings match nothing: triage, with
// the reason, never a guess.
func TestMatchFindsTheNamedAppointmentAmongLookAlikes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		add   func(a pkbsim.Appointment) []pkbsim.Appointment
		found bool
	}{
		{"same-day decoy", func(a pkbsim.Appointment) []pkbsim.Appointment {
			d := a
			d.ID, d.PlacerID, d.Start, d.End = a.ID+"-later", a.PlacerID+"-later", a.Start.Add(2*time.Hour), a.End.Add(2*time.Hour)
			return []pkbsim.Appointment{d}
		}, true},
		{"same time, another specialty", func(a pkbsim.Appointment) []pkbsim.Appointment {
			d := a
			d.ID, d.PlacerID, d.SpecialtyCode, d.Specialty, d.Type = a.ID+"-derm", a.PlacerID+"-derm", "330", "Dermatology", "Dermatology Outpatient Clinic"
			return []pkbsim.Appointment{d}
		}, true},
		{"beyond the first page", func(a pkbsim.Appointment) []pkbsim.Appointment {
			var more []pkbsim.Appointment
			for i := range 150 {
				d := a
				// Earlier the same day: PKB lists by start, so the named
				// one comes 151st, on the second page of 100.
				d.ID, d.PlacerID = fmt.Sprintf("%s-earlier-%03d", a.ID, i), fmt.Sprintf("%s-earlier-%03d", a.PlacerID, i)
				d.Start, d.End = a.Start.Add(-time.Duration(i+1)*time.Second), a.End.Add(-time.Duration(i+1)*time.Second)
				more = append(more, d)
			}
			return more
		}, true},
		{"identical twin bookings", func(a pkbsim.Appointment) []pkbsim.Appointment {
			d := a
			d.ID, d.PlacerID = a.ID+"-twin", a.PlacerID+"-twin"
			return []pkbsim.Appointment{d}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			e := r.Expect(pkbsim.KindRoutable)
			m := r.Message(e.MessageID)
			ds := r.Sim.Dataset()
			var a pkbsim.Appointment
			for _, x := range ds.Appointments {
				if x.ID == e.AppointmentID {
					a = x
				}
			}
			// Found only by searching all the patient's appointments on
			// the day, pages included: the named one is not pending.
			for i := range ds.Appointments {
				if ds.Appointments[i].ID == a.ID {
					ds.Appointments[i].Status = "booked"
					a.Status = "booked"
				}
			}
			ds.Appointments = append(ds.Appointments, tc.add(a)...)
			r.Sim.Load(ds)

			var f activities.MessageFacts
			require.NoError(t, r.run(t, &f, r.Set.Request.FetchMessage, activities.MessageRef{ID: m.ID, Timestamp: m.Timestamp}))
			var match activities.Match
			require.NoError(t, r.run(t, &match, r.Set.Request.MatchAppointment, activities.MatchInput{PatientID: f.PatientID, Start: f.Start, Subject: f.Subject, ReceivedAt: f.ReceivedAt}))
			if !tc.found {
				assert.False(t, match.Found)
				assert.Contains(t, match.Reason, "2 appointments match")
				return
			}
			require.True(t, match.Found, match.Reason)
			assert.Equal(t, a.ID, match.AppointmentID)
		})
	}
}

// The PAS may rebook before Rebook matches the request (the worker was
// down, the booking office was quick): the new booking is not among what
// the patient already had, so the change request closes on it. Found by
// make chaos, where such a request stayed open for good.
func TestMatchAfterThePASRebookedStillClosesOnTheNewBooking(t *testing.T) {
	r := newRig(t)
	var e pkbsim.Expectation
	for _, x := range r.DS.Expect {
		if x.Kind == pkbsim.KindRoutable && x.RequestType == subject.Change {
			e = x
			break
		}
	}
	require.NotEmpty(t, e.MessageID, "the scenario has a routable change request")
	m := r.Message(e.MessageID)
	var f activities.MessageFacts
	require.NoError(t, r.run(t, &f, r.Set.Request.FetchMessage, activities.MessageRef{ID: m.ID, Timestamp: m.Timestamp}))

	newID, err := r.Sim.Rebook(e.AppointmentID, f.Start.AddDate(0, 0, 7))
	require.NoError(t, err)

	var match activities.Match
	require.NoError(t, r.run(t, &match, r.Set.Request.MatchAppointment, activities.MatchInput{PatientID: f.PatientID, Start: f.Start, Subject: f.Subject, ReceivedAt: f.ReceivedAt}))
	require.True(t, match.Found, match.Reason)
	assert.Equal(t, e.AppointmentID, match.AppointmentID)
	assert.NotContains(t, match.Known, newID, "a booking made since the patient wrote is not one they had")

	var seen []activities.AppointmentUpdate
	require.NoError(t, r.run(t, &seen, r.Set.Appointments.CheckAppointment, activities.CheckInput{AppointmentID: match.AppointmentID, PatientID: f.PatientID,
		SpecialtyCode: match.SpecialtyCode, RequestType: f.Type, ReceivedAt: f.ReceivedAt, Known: match.Known}))
	ev := activities.Evidence{RequestType: f.Type, AppointmentID: match.AppointmentID, Start: match.Start, SpecialtyCode: match.SpecialtyCode,
		ReceivedAt: f.ReceivedAt, Known: match.Known}
	v := ev.Judge(seen, time.Now())
	assert.Equal(t, activities.VerdictActioned, v.Kind, "closed as %q", v.How)

	// Without the message's time (a request matched before it was sent),
	// the new booking is taken as known, as before: kept for replay.
	require.NoError(t, r.run(t, &match, r.Set.Request.MatchAppointment, activities.MatchInput{PatientID: f.PatientID, Start: f.Start, Subject: f.Subject}))
	assert.Contains(t, match.Known, newID)
}

// routedRequest puts the scenario's first routable request in the read
// model as routed, as route-to-team would.
func (r *rig) routedRequest(t *testing.T) (pkbsim.Expectation, pkbsim.Message, string) {
	e := r.Expect(pkbsim.KindRoutable)
	m := r.Message(e.MessageID)
	wid := workflows.RequestWorkflowID(m.ID)
	// As matching records it: PKB's lastUpdated of the appointment.
	var updated *time.Time
	for _, a := range r.DS.Appointments {
		if a.ID == e.AppointmentID {
			updated = &a.LastUpdated
		}
	}
	require.NoError(t, r.Store.SaveRequest(context.Background(), store.Request{MessageID: m.ID, WorkflowID: wid, Ref: refs.New(),
		State: workflows.StateRouted, RequestType: string(e.RequestType), AppointmentID: e.AppointmentID, PatientID: m.PatientID,
		ReceivedAt: time.UnixMilli(m.Timestamp), AppointmentUpdatedAt: updated}))
	return e, m, wid
}

func TestAppointmentActivitiesSeeThePASAct(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	e, m, wid := r.routedRequest(t)

	in := activities.CheckInput{AppointmentID: e.AppointmentID, PatientID: m.PatientID, RequestType: string(e.RequestType), ReceivedAt: time.UnixMilli(m.Timestamp)}
	var got []activities.AppointmentUpdate
	require.NoError(t, r.run(t, &got, r.Set.Appointments.CheckAppointment, in))
	require.Len(t, got, 1)
	assert.NotEqual(t, "cancelled", got[0].Status)

	require.NoError(t, r.Sim.Cancel(e.AppointmentID))
	require.NoError(t, r.run(t, &got, r.Set.Appointments.CheckAppointment, in))
	assert.Equal(t, "cancelled", got[0].Status)

	// PKB's documented API: the watcher asks about the due patient alone.
	require.NoError(t, r.Store.ScheduleCheck(ctx, m.ID, time.Now().Add(-time.Minute), 10*time.Minute, time.Now().Add(48*time.Hour)))
	var res activities.WatchResult
	require.NoError(t, r.run(t, &res, r.Set.Appointments.WatchAppointments))
	assert.Equal(t, activities.WatchPatientScoped, res.Mode)
	assert.Equal(t, 1, res.Patients)
	assert.Equal(t, 1, res.Signalled)
	require.NotEmpty(t, r.Requests.Seen[wid], "the waiting request was told")
	assert.Equal(t, e.AppointmentID, r.Requests.Seen[wid][0][0].AppointmentID, "its own appointment first")
	assert.Equal(t, "cancelled", r.Requests.Seen[wid][0][0].Status)
	assert.EqualValues(t, 1, r.Sim.Counters()[pkbsim.CounterOrgWideRefused], "the org-wide search was probed once")
	waiting, err := r.Store.WaitingOf(ctx, m.PatientID)
	require.NoError(t, err)
	require.Len(t, waiting, 1)
	assert.Equal(t, 20*time.Minute, waiting[0].CheckEvery, "the spacing doubles")
	assert.True(t, waiting[0].NextCheckAt.After(time.Now()))

	// Not due again yet: no call; the refusal is not probed again.
	before := r.Sim.Counters()["GET /fhir/Appointment"]
	require.NoError(t, r.run(t, &res, r.Set.Appointments.WatchAppointments))
	assert.Zero(t, res.Patients)
	assert.Equal(t, before, r.Sim.Counters()["GET /fhir/Appointment"])
	assert.EqualValues(t, 1, r.Sim.Counters()[pkbsim.CounterOrgWideRefused])
}

// The watcher tells a waiting request what PKB shows only when it differs
// from what it told it last: checks that find nothing new add no history.
// Routing the request again (a restart) clears what it was told.
func TestWatcherTellsARequestOnlyWhatIsNew(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	e, m, wid := r.routedRequest(t)
	check := func() activities.WatchResult {
		t.Helper()
		require.NoError(t, r.Store.ScheduleCheck(ctx, m.ID, time.Now().Add(-time.Minute), 10*time.Minute, time.Time{}))
		var res activities.WatchResult
		require.NoError(t, r.run(t, &res, r.Set.Appointments.WatchAppointments))
		require.Equal(t, 1, res.Patients, "the patient was checked")
		return res
	}
	assert.Equal(t, 1, check().Signalled, "the first check tells the request")
	assert.Equal(t, 0, check().Signalled, "nothing changed: not told again")
	assert.Equal(t, 0, check().Signalled)
	require.Len(t, r.Requests.Seen[wid], 1)

	require.NoError(t, r.Sim.Cancel(e.AppointmentID))
	assert.Equal(t, 1, check().Signalled, "a change is told")
	assert.Equal(t, "cancelled", r.Requests.Seen[wid][1][0].Status)
	assert.Equal(t, 0, check().Signalled)

	row, err := r.Store.Request(ctx, m.ID)
	require.NoError(t, err)
	require.NoError(t, r.Store.SaveRequest(ctx, row))
	assert.Equal(t, 1, check().Signalled, "a request routed again is told afresh")
	require.Len(t, r.Requests.Seen[wid], 3)
}

// Where PKB answers a search across all patients (the simulator's option),
// the watcher uses it instead.
func TestWatcherUsesAnOrgWideSearchWhereAllowed(t *testing.T) {
	r := newRig(t)
	r.Sim.SetOrgWideSearch(true)
	e, _, wid := r.routedRequest(t)
	require.NoError(t, r.Sim.Cancel(e.AppointmentID))
	var res activities.WatchResult
	require.NoError(t, r.run(t, &res, r.Set.Appointments.WatchAppointments))
	assert.Equal(t, activities.WatchOrgWide, res.Mode)
	assert.Positive(t, res.Signalled)
	require.NotEmpty(t, r.Requests.Signals[wid])
	assert.Equal(t, "cancelled", r.Requests.Signals[wid][0].Status)
}

func TestRecordStateAndNotices(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	wid := workflows.RequestWorkflowID("msg-1")
	in := activities.RouteInput{MessageID: "msg-1", WorkflowID: wid, ReceivedAt: time.Now(), RequestType: "cancel", Triage: true, Reason: "subject not understood",
		Card: card.Card{WorkflowID: wid, RequestType: "cancel", State: card.Open}}
	var route activities.Route
	require.NoError(t, r.run(t, &route, r.Set.Route.RouteToTeam, in))
	assert.Equal(t, activities.TriageTeam, route.Team)
	assert.Equal(t, 24, route.SLAHours, "triage's SLA defaults to 24 h")

	require.NoError(t, r.run(t, nil, r.Set.Route.RecordState, activities.StateInput{MessageID: "msg-1", WorkflowID: wid, State: workflows.StateClaimed,
		Actor: "U1", Action: workflows.StateClaimed, ClaimedBy: "U1"}))
	row, err := r.Store.Request(ctx, "msg-1")
	require.NoError(t, err)
	assert.Equal(t, workflows.StateClaimed, row.State)
	assert.Equal(t, "U1", row.ClaimedBy)
	trail, err := r.Store.AuditTrail(ctx, wid)
	require.NoError(t, err)
	assert.Len(t, trail, 2, "routed, then claimed")

	c := in.Card
	c.Ref, c.State, c.ClaimedBy = route.Ref, card.Claimed, "U1"
	require.NoError(t, r.run(t, nil, r.Set.Notices.UpdateCard, activities.CardInput{ChannelID: route.ChannelID, TS: route.TS, Card: c}))
	roots := r.Slack.Roots("rebook-triage")
	require.Len(t, roots, 1)
	assert.Equal(t, 1, roots[0].Edits)
	assert.Contains(t, roots[0].Text, route.Ref)

	require.NoError(t, r.run(t, nil, r.Set.Notices.Notify, activities.NotifyInput{Text: "Overdue: " + route.Ref}))
	assert.Len(t, r.Slack.Roots("rebook-triage"), 2, "a notice without a channel goes to triage")
	err = r.run(t, nil, r.Set.Notices.Notify, activities.NotifyInput{Channel: "no-such-channel", Text: "x"})
	assert.ErrorContains(t, err, "not found")
}

func TestGrantActivitiesRefreshAndAskWhenRefused(t *testing.T) {
	r := newRig(t)
	var g activities.GrantInfo
	require.NoError(t, r.run(t, &g, r.Set.Grant.LoadGrant, "c"))
	require.True(t, g.Exists && g.Healthy)

	var res activities.RefreshResult
	require.NoError(t, r.run(t, &res, r.Set.Grant.RefreshGrant, "c"))
	assert.False(t, res.Refused)
	assert.True(t, res.ExpiresAt.After(time.Now()))

	require.Equal(t, 1, r.Sim.RevokeGrants())
	require.NoError(t, r.run(t, &res, r.Set.Grant.RefreshGrant, "c"))
	assert.True(t, res.Refused)
	assert.Contains(t, res.Reason, "invalid_grant")
	require.NoError(t, r.run(t, &g, r.Set.Grant.LoadGrant, "c"))
	assert.False(t, g.Healthy)
	assert.Equal(t, res.Reason, g.LastError)

	// PKB work now pauses with a retryable error and makes no call.
	err := r.run(t, nil, r.Set.Poll.ReadMessages, int64(0))
	assert.ErrorContains(t, err, "access not granted")

	require.NoError(t, r.run(t, nil, r.Set.Grant.AskForGrant, activities.AskInput{Reason: res.Reason}))
	asks := r.Slack.Roots("rebook-admin")
	require.Len(t, asks, 1)
	assert.Contains(t, asks[0].Text, "http://rebook.test/oauth/start")
}

// A waiting request the watcher has not reached for more than a day past
// its due check (the budget spent elsewhere) is counted and told to the
// admins, once however many runs see it.
func TestWatcherTellsTheAdminsOfARequestItCannotReach(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	_, m, _ := r.routedRequest(t)
	now := time.Now()
	require.NoError(t, r.Store.ScheduleCheck(ctx, m.ID, now.Add(-49*time.Hour), time.Hour, now.Add(48*time.Hour)))
	// The budget is spent: nothing is checked this hour.
	require.NoError(t, r.Store.SetCursor(ctx, "pkb-watch-budget-at", now.Add(time.Hour).UnixMilli()))
	r.Set.Appointments.Now = func() time.Time { return now }
	for range 3 {
		var res activities.WatchResult
		require.NoError(t, r.run(t, &res, r.Set.Appointments.WatchAppointments))
		assert.Zero(t, res.Patients)
	}
	row, err := r.Store.Request(ctx, m.ID)
	require.NoError(t, err)
	told := 0
	for _, msg := range r.Slack.Roots("rebook-admin") {
		if strings.Contains(msg.Text, row.Ref) && strings.Contains(msg.Text, "has not been checked in PKB") {
			told++
		}
	}
	assert.Equal(t, 1, told)
}
