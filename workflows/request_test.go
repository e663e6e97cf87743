package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/workflows"
)

// Typed activity references, as the workflows use them.
var (
	pollA    *activities.PollActivities
	requestA *activities.RequestActivities
	routeA   *activities.RouteActivities
	apptA    *activities.AppointmentActivities
	noticeA  *activities.NoticeActivities
	grantA   *activities.GrantActivities
)

var (
	received = time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
	apptAt   = time.Date(2027, 3, 14, 9, 30, 0, 0, time.UTC)
	ref      = activities.MessageRef{ID: "msg-1", Timestamp: received.UnixMilli()}
)

type requestSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env    *testsuite.TestWorkflowEnvironment
	states []activities.StateInput
	routed []activities.RouteInput
	cards  []activities.CardInput
	notes  []activities.NotifyInput
	// presses counts button presses made and answered: every press must
	// get its answer before the test ends.
	presses, answered int
}

func TestRequestWorkflow(t *testing.T) { suite.Run(t, new(requestSuite)) }

func (s *requestSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	workflows.Register(s.env)
	activities.Register(s.env, activities.Set{})
	s.states, s.routed, s.cards, s.notes = nil, nil, nil, nil
	s.presses, s.answered = 0, 0
	s.env.OnActivity(routeA.RecordState, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StateInput) error {
		s.states = append(s.states, in)
		return nil
	}).Maybe()
	s.env.OnActivity(noticeA.UpdateCard, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CardInput) error {
		s.cards = append(s.cards, in)
		return nil
	}).Maybe()
	s.env.OnActivity(noticeA.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyInput) error {
		s.notes = append(s.notes, in)
		return nil
	}).Maybe()
}

func (s *requestSuite) AfterTest(_, _ string) {
	s.env.AssertExpectations(s.T())
	s.Equal(s.presses, s.answered, "every button press was answered")
}

func facts(typ string) activities.MessageFacts {
	return activities.MessageFacts{PatientID: "pat-1", ReceivedAt: received, Readable: true, Type: typ, Start: apptAt, Subject: "Cardiology Outpatient Clinic"}
}

var found = activities.Match{Found: true, AppointmentID: "appt-1", Status: "pending", Specialty: "Cardiology", SpecialtyCode: "320", Clinic: "Clinic A", Start: apptAt, Known: []string{"appt-5"}}

// intake mocks the first four activities and route-to-team.
func (s *requestSuite) intake(f activities.MessageFacts, m activities.Match, n activities.NationalID, triage bool, sla int) {
	s.env.OnActivity(requestA.FetchMessage, mock.Anything, ref).Return(f, nil).Once()
	if f.Readable {
		s.env.OnActivity(requestA.MatchAppointment, mock.Anything, activities.MatchInput{PatientID: "pat-1", Start: apptAt, Subject: f.Subject, ReceivedAt: f.ReceivedAt}).Return(m, nil).Once()
	}
	s.env.OnActivity(requestA.ResolveNationalID, mock.Anything, "pat-1").Return(n, nil).Once()
	s.env.OnActivity(routeA.RouteToTeam, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RouteInput) (activities.Route, error) {
		s.routed = append(s.routed, in)
		r := activities.Route{Team: "Cardiology bookings", Channel: "rebook-cardiology", ChannelID: "C1", TS: "1.1", Ref: "RB-1", SLAHours: sla, Triage: in.Triage, Reason: in.Reason}
		if in.Triage {
			r.Team, r.Channel, r.ChannelID = activities.TriageTeam, "rebook-triage", "C2"
		}
		return r, nil
	}).Once()
}

var valid = activities.NationalID{Status: activities.NHSValid, Verified: true}

func (s *requestSuite) signal(after time.Duration, u activities.AppointmentUpdate) {
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(workflows.SignalAppointmentChanged, u) }, after)
}

func (s *requestSuite) press(after time.Duration, a workflows.StaffAction, want string, wantErr string) {
	s.presses++
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateStaffAction, a.Action+a.User+after.String(), &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				s.answered++
				s.Require().NotEmpty(wantErr, "rejected: %v", err)
				s.Contains(err.Error(), wantErr)
			},
			OnAccept: func() {},
			OnComplete: func(result interface{}, err error) {
				s.answered++
				if wantErr != "" {
					s.Require().Error(err)
					s.Contains(err.Error(), wantErr)
					return
				}
				s.Require().NoError(err)
				s.Contains(result, want)
			},
		}, a)
	}, after)
}

func (s *requestSuite) outcome() workflows.Outcome {
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var o workflows.Outcome
	s.Require().NoError(s.env.GetWorkflowResult(&o))
	return o
}

func (s *requestSuite) lastState() activities.StateInput {
	s.Require().NotEmpty(s.states)
	return s.states[len(s.states)-1]
}

func (s *requestSuite) TestCancelCompletesWhenPKBShowsItCancelled() {
	s.intake(facts("cancel"), found, valid, false, 48)
	s.signal(time.Hour, activities.AppointmentUpdate{AppointmentID: "appt-1", Status: "pending", Start: apptAt})
	s.signal(90*time.Minute, activities.AppointmentUpdate{AppointmentID: "appt-1", Status: "cancelled", Start: apptAt})
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	o := s.outcome()
	s.Equal(workflows.StateCompleted, o.State)
	s.Contains(o.Note, "cancelled")
	s.False(s.routed[0].Triage)
	s.Equal("Cardiology", s.routed[0].Specialty)
	s.Equal("appt-1", s.routed[0].AppointmentID)
	st := s.lastState()
	s.True(st.Closed)
	s.Equal(workflows.StateCompleted, st.State)
	s.Require().Len(s.cards, 1, "final edit of the Slack message")
	s.Equal(card.Completed, s.cards[0].Card.State)
	s.Equal("1.1", s.cards[0].TS)
	s.Empty(s.notes, "no reminder before the SLA")
}

func (s *requestSuite) TestChangeCompletesWhenMoved() {
	s.intake(facts("change"), found, valid, false, 48)
	s.signal(time.Hour, activities.AppointmentUpdate{AppointmentID: "appt-1", Status: "booked", Start: apptAt.Add(7 * 24 * time.Hour)})
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	o := s.outcome()
	s.Equal(workflows.StateCompleted, o.State)
	s.Contains(o.Note, "moved")
}

func (s *requestSuite) TestChangeNeedsCancelAndNewBooking() {
	s.intake(facts("change"), found, valid, false, 48)
	s.signal(time.Hour, activities.AppointmentUpdate{AppointmentID: "appt-1", Status: "cancelled", Start: apptAt})
	var stillOpen bool
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryState)
		s.Require().NoError(err)
		var st workflows.RequestStatus
		s.Require().NoError(v.Get(&st))
		stillOpen = st.State == workflows.StateRouted && st.Progress.Cancelled
	}, 70*time.Minute)
	s.signal(80*time.Minute, activities.AppointmentUpdate{AppointmentID: "appt-9", Status: "booked", Start: apptAt.Add(48 * time.Hour), SpecialtyCode: "320"})
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	s.True(stillOpen, "cancelled alone does not complete a change request")
	s.Require().Len(s.notes, 1)
	s.Equal("1.1", s.notes[0].ThreadTS)
	s.Contains(s.notes[0].Text, "cancelled, not yet rebooked")
	o := s.outcome()
	s.Equal(workflows.StateCompleted, o.State)
	s.Contains(o.Note, "cancelled and rebooked")
}

func (s *requestSuite) TestNoMatchGoesToTriageAndDoneCloses() {
	none := activities.Match{Reason: "no appointment for this patient at that date, time and subject"}
	s.intake(facts("cancel"), none, valid, true, 24)
	s.press(time.Hour, workflows.StaffAction{Action: workflows.ActionDone, User: "U1"}, "Marked RB-1 done.", "")
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	s.True(s.routed[0].Triage)
	s.Contains(s.routed[0].Reason, "no appointment for this patient")
	o := s.outcome()
	s.Equal(workflows.StateTriagedThenCompleted, o.State)
	s.Equal("U1", o.ClosedBy)
	s.Equal("U1", s.lastState().ClosedBy)
}

func (s *requestSuite) TestAmbiguousGoesToTriageWithReason() {
	amb := activities.Match{Reason: "2 appointments match the date, time and subject"}
	s.intake(facts("change"), amb, valid, true, 24)
	s.press(time.Hour, workflows.StaffAction{Action: workflows.ActionCantAction, User: "U2", Note: "double booking; phoned patient"}, "not actionable", "")
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	s.Contains(s.routed[0].Reason, "2 appointments match")
	o := s.outcome()
	s.Equal(workflows.StateClosedByStaff, o.State)
	s.Equal("U2", o.ClosedBy)
	s.Contains(o.Note, "double booking")
	s.Equal(card.Closed, s.cards[len(s.cards)-1].Card.State)
}

func (s *requestSuite) TestUnreadableSubjectGoesToTriage() {
	f := activities.MessageFacts{PatientID: "pat-1", ReceivedAt: received, Reason: "no appointment date found"}
	s.intake(f, activities.Match{}, valid, true, 24)
	s.press(time.Minute, workflows.StaffAction{Action: workflows.ActionDone, User: "U1"}, "Marked RB-1 done.", "")
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	s.Equal("subject not understood: no appointment date found", s.routed[0].Reason)
	s.Equal(workflows.StateTriagedThenCompleted, s.outcome().State)
}

func (s *requestSuite) TestMissingNHSNumberTriagesButStillCompletesOnPKB() {
	s.intake(facts("cancel"), found, activities.NationalID{Status: activities.NHSMissing, Reason: "the patient's record has no NHS number"}, true, 24)
	s.signal(time.Hour, activities.AppointmentUpdate{AppointmentID: "appt-1", Status: "cancelled", Start: apptAt})
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	s.True(s.routed[0].Triage)
	s.Contains(s.routed[0].Reason, "no NHS number")
	s.Equal("appt-1", s.routed[0].AppointmentID, "the match still travels with the triaged request")
	s.Equal(workflows.StateTriagedThenCompleted, s.outcome().State)
}

func (s *requestSuite) TestUnverifiedNHSNumberIsFlagged() {
	s.intake(facts("cancel"), found, activities.NationalID{Status: activities.NHSValid, Verified: false}, false, 48)
	s.signal(time.Hour, activities.AppointmentUpdate{AppointmentID: "appt-1", Status: "cancelled"})
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	s.False(s.routed[0].Triage)
	s.Equal([]string{"NHS number not verified in PKB"}, s.routed[0].Flags)
}

func (s *requestSuite) TestClaimThenSecondClaimRefusedThenDoneChecksPKB() {
	s.intake(facts("cancel"), found, valid, false, 48)
	s.env.OnActivity(apptA.CheckAppointment, mock.Anything, mock.Anything).Return([]activities.AppointmentUpdate{{AppointmentID: "appt-1", Status: "pending", Start: apptAt}}, nil).Once()
	s.env.OnActivity(apptA.CheckAppointment, mock.Anything, mock.Anything).Return([]activities.AppointmentUpdate{{AppointmentID: "appt-1", Status: "cancelled", Start: apptAt}}, nil).Once()
	s.press(10*time.Minute, workflows.StaffAction{Action: workflows.ActionClaim, User: "U1"}, "You have claimed RB-1.", "")
	s.press(20*time.Minute, workflows.StaffAction{Action: workflows.ActionClaim, User: "U2"}, "", "already claimed by <@U1>")
	s.press(30*time.Minute, workflows.StaffAction{Action: workflows.ActionDone, User: "U1"}, "", "does not show the appointment changed yet")
	s.press(40*time.Minute, workflows.StaffAction{Action: workflows.ActionDone, User: "U1"}, "PKB shows it done", "")
	s.press(5*time.Minute, workflows.StaffAction{Action: "reopen", User: "U1"}, "", "unknown action")
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	o := s.outcome()
	s.Equal(workflows.StateCompleted, o.State)
	s.Equal("U1", o.ClosedBy)
	s.Equal(workflows.StateClaimed, s.states[0].State)
	s.Equal("U1", s.states[0].ClaimedBy)
	s.Equal(card.Claimed, s.cards[0].Card.State)
}

func (s *requestSuite) TestSLAReminderAndEscalation() {
	s.intake(facts("cancel"), found, valid, false, 4)
	s.env.OnActivity(apptA.CheckAppointment, mock.Anything, mock.Anything).Return([]activities.AppointmentUpdate{{AppointmentID: "appt-1", Status: "pending", Start: apptAt}}, nil).Maybe()
	s.signal(5*time.Hour, activities.AppointmentUpdate{AppointmentID: "appt-1", Status: "cancelled", Start: apptAt})
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	s.Equal(workflows.StateCompleted, s.outcome().State)
	s.Require().Len(s.notes, 2)
	s.Equal("C1", s.notes[0].Channel, "reminder in the team's channel")
	s.Equal("1.1", s.notes[0].ThreadTS, "in the message's thread")
	s.Contains(s.notes[0].Text, "Reminder: RB-1")
	s.Empty(s.notes[1].Channel, "escalation goes to the triage channel")
	s.Empty(s.notes[1].ThreadTS)
	s.Contains(s.notes[1].Text, "Overdue: RB-1")
}

func (s *requestSuite) TestWatcherSnapshotClosesTheRequest() {
	s.intake(facts("change"), found, valid, false, 72)
	at := time.Duration(0)
	s.env.RegisterDelayedCallback(func() {
		at = s.env.Now().Sub(received)
		s.env.SignalWorkflow(workflows.SignalAppointmentsSeen, []activities.AppointmentUpdate{
			{AppointmentID: "appt-1", Status: "cancelled", Start: apptAt, SpecialtyCode: "320"},
			{AppointmentID: "appt-5", Status: "booked", Start: apptAt.AddDate(0, 1, 0), SpecialtyCode: "320"},
			{AppointmentID: "appt-9", Status: "booked", Start: apptAt.AddDate(0, 0, 7), SpecialtyCode: "320"},
		})
	}, 20*time.Minute)
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	o := s.outcome()
	s.Equal(workflows.StateCompleted, o.State)
	s.Contains(o.Note, "cancelled and rebooked", "appt-9 is new; appt-5 was known at the match")
	s.NotZero(at)
}

func (s *requestSuite) TestSafetyNetCheckFindsTheChange() {
	s.intake(facts("cancel"), found, valid, false, 72)
	s.env.OnActivity(apptA.CheckAppointment, mock.Anything, activities.CheckInput{AppointmentID: "appt-1", PatientID: "pat-1", SpecialtyCode: "320", RequestType: "cancel", ReceivedAt: received, Known: []string{"appt-5"}}).
		Return([]activities.AppointmentUpdate{{AppointmentID: "appt-1", Status: "cancelled", Start: apptAt}}, nil).Once()
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	s.Equal(workflows.StateCompleted, s.outcome().State)
}

func (s *requestSuite) TestActivityRetriesThenSucceeds() {
	calls := 0
	s.env.OnActivity(requestA.FetchMessage, mock.Anything, ref).Return(func(context.Context, activities.MessageRef) (activities.MessageFacts, error) {
		calls++
		if calls < 3 {
			return activities.MessageFacts{}, temporal.NewApplicationError("pkb: GET /json/messages/after/{ms}: server (HTTP 503)", "PKB:server")
		}
		return facts("cancel"), nil
	})
	s.env.OnActivity(requestA.MatchAppointment, mock.Anything, mock.Anything).Return(found, nil)
	s.env.OnActivity(requestA.ResolveNationalID, mock.Anything, "pat-1").Return(valid, nil)
	s.env.OnActivity(routeA.RouteToTeam, mock.Anything, mock.Anything).Return(activities.Route{Team: "T", ChannelID: "C1", TS: "1.1", Ref: "RB-1", SLAHours: 48}, nil)
	s.signal(time.Hour, activities.AppointmentUpdate{AppointmentID: "appt-1", Status: "cancelled"})
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	s.Equal(3, calls)
	s.Equal(workflows.StateCompleted, s.outcome().State)
}

func (s *requestSuite) TestNonRetryablePKBRefusalGoesToTriage() {
	s.env.OnActivity(requestA.FetchMessage, mock.Anything, ref).Return(facts("cancel"), nil)
	s.env.OnActivity(requestA.MatchAppointment, mock.Anything, mock.Anything).Return(activities.Match{},
		temporal.NewNonRetryableApplicationError("pkb: GET /fhir/Appointment: forbidden (HTTP 403)", "PKB:forbidden", errors.New("x")))
	s.env.OnActivity(requestA.ResolveNationalID, mock.Anything, "pat-1").Return(valid, nil)
	s.env.OnActivity(routeA.RouteToTeam, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RouteInput) (activities.Route, error) {
		s.routed = append(s.routed, in)
		return activities.Route{Team: activities.TriageTeam, ChannelID: "C2", TS: "1.2", Ref: "RB-1", SLAHours: 24, Triage: true, Reason: in.Reason}, nil
	})
	s.press(time.Hour, workflows.StaffAction{Action: workflows.ActionCantAction, User: "U3"}, "not actionable", "")
	s.env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref)
	s.True(s.routed[0].Triage)
	s.Contains(s.routed[0].Reason, "refused access to this patient's record")
	s.Equal(workflows.StateClosedByStaff, s.outcome().State)
}

func TestPollMessagesStartsThenAdvances(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	workflows.Register(env)
	activities.Register(env, activities.Set{})
	page := []activities.MessageRef{{ID: "a", Timestamp: 10}, {ID: "b", Timestamp: 12}}
	var order []string
	env.OnActivity(pollA.LoadCursor, mock.Anything).Return(int64(5), nil)
	env.OnActivity(pollA.ReadMessages, mock.Anything, int64(5)).Return(page, nil).Once()
	env.OnActivity(pollA.ReadMessages, mock.Anything, int64(12)).Return([]activities.MessageRef{}, nil).Once()
	env.OnActivity(pollA.StartRequests, mock.Anything, page).Return(func(context.Context, []activities.MessageRef) (int, error) {
		order = append(order, "start")
		return 2, nil
	}).Once()
	env.OnActivity(pollA.AdvanceCursor, mock.Anything, int64(12)).Return(func(context.Context, int64) error {
		order = append(order, "advance")
		return nil
	}).Once()
	env.ExecuteWorkflow(workflows.PollMessagesWorkflow)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res workflows.PollResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.PollResult{Pages: 1, Started: 2}, res)
	require.Equal(t, []string{"start", "advance"}, order, "the cursor moves only after the starts")
	env.AssertExpectations(t)
}
