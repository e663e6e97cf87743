package workflows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/testrig"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/rebookhq/rebook/workflows"
)

// routeThenStop runs a request's workflow through intake to its wait and
// stops it there: its row is routed and waiting, as the real activities
// left it.
func routeThenStop(t *testing.T, r *testrig.Rig, m pkbsim.Message) {
	t.Helper()
	env := realEnv(r)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.RequestWorkflowID(m.ID)})
	status := stopAt(t, env, time.Minute)
	env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, activities.MessageRef{ID: m.ID, Timestamp: m.Timestamp})
	require.NotEmpty(t, status.Team, "it went to a team")
}

// Issue 22, case 5: one patient whose record PKB refuses (sharing
// withdrawn: 403) and one whose search PKB garbles do not stop the
// watcher's run: every other due patient is checked in the same run, the
// failing patients back off behind them, their failed calls are given
// back to the budget, and the refused patient's request is told to go to
// triage. A request told so goes to triage with the reason and the triage
// team hears of it.
func TestHazardOneRefusedPatientDoesNotStarveTheWatcher(t *testing.T) {
	r := testrig.New(t)
	var msgs []pkbsim.Message
	patients := map[string]bool{}
	// The first is a cancel request, which closes once PKB shows it
	// cancelled.
	for _, cancelFirst := range []bool{true, false} {
		for _, e := range r.DS.Expect {
			m := r.Message(e.MessageID)
			if e.Kind == pkbsim.KindRoutable && !patients[m.PatientID] && len(msgs) < 5 && (!cancelFirst || e.RequestType == subject.Cancel) {
				patients[m.PatientID] = true
				msgs = append(msgs, m)
				break
			}
		}
	}
	for _, e := range r.DS.Expect {
		m := r.Message(e.MessageID)
		if e.Kind == pkbsim.KindRoutable && !patients[m.PatientID] && len(msgs) < 5 {
			patients[m.PatientID] = true
			msgs = append(msgs, m)
		}
	}
	require.Len(t, msgs, 5)
	for _, m := range msgs {
		routeThenStop(t, r, m)
	}
	refused, garbled := msgs[0].PatientID, msgs[1].PatientID
	r.Sim.WithdrawSharing(refused)
	r.Sim.Garble(garbled, `{"resourceType": "Bundle", "entry": "not a list"}`)

	clock := time.Now().Add(10 * time.Minute) // every first check is due
	r.Set.Appointments.Now = func() time.Time { return clock }
	r.Set.Appointments.CallsPerHour = 3600
	res, err := r.Set.Appointments.WatchAppointments(context.Background())
	require.NoError(t, err, "one patient's failure does not fail the run")
	assert.Equal(t, 2, res.Failed)
	assert.Equal(t, 3, res.Patients, "every other due patient was checked in the same run")
	for _, m := range msgs[2:] {
		assert.NotEmpty(t, r.Requests.Seen[workflows.RequestWorkflowID(m.ID)], "%s was checked", m.ID)
	}
	wRefused := workflows.RequestWorkflowID(msgs[0].ID)
	require.Len(t, r.Requests.Refused[wRefused], 1)
	assert.Contains(t, r.Requests.Refused[wRefused][0], "HTTP 403")
	assert.Empty(t, r.Requests.Refused[workflows.RequestWorkflowID(msgs[1].ID)], "a garbled answer backs off, it does not triage")
	for _, p := range []string{refused, garbled} {
		ws, err := r.Store.WaitingOf(context.Background(), p)
		require.NoError(t, err)
		for _, w := range ws {
			assert.True(t, w.NextCheckAt.After(clock), "the failing patient backs off")
		}
	}
	// The failed calls went back to the budget: its clock stands 3 calls
	// past the run's start (the 5-minute carry), not 5.
	at, err := r.Store.Cursor(context.Background(), "pkb-watch-budget-at")
	require.NoError(t, err)
	per := (time.Hour + 5*time.Minute) / 3600
	assert.InDelta(t, clock.Add(-5*time.Minute+3*per).UnixMilli(), at, 10, "only the 3 answered calls are charged")

	// The refused patient's request, running: told, it goes to triage.
	r.Sim.WithdrawSharing("")
	r.Set.Appointments.Now = nil
	c := &chain{t: t, r: r}
	var told workflows.RequestStatus
	c.at(time.Hour, func() { c.env.SignalWorkflow(workflows.SignalCheckRefused, r.Requests.Refused[wRefused][0]) })
	c.at(2*time.Hour, func() {
		told = c.status()
		_ = r.Sim.Cancel(appointmentOf(r, msgs[0].ID))
		edit(r, func(ds *pkbsim.Dataset) {})
	})
	c.watchBetween(3*time.Hour, time.Hour, 6*time.Hour)
	o, _ := c.run(activities.MessageRef{ID: msgs[0].ID, Timestamp: msgs[0].Timestamp}, time.Now())
	assert.True(t, told.Triage)
	assert.Equal(t, workflows.StateTriaged, told.State)
	assert.Contains(t, told.Reason, "PKB refused access to this patient's record")
	row, err := r.Store.Request(context.Background(), msgs[0].ID)
	require.NoError(t, err)
	assert.True(t, row.Triage, "the read model shows it triaged")
	assert.Contains(t, row.Reason, "refused access")
	triageTold := 0
	for _, m := range r.Slack.Roots("rebook-triage") {
		if strings.Contains(m.Text, "needs a person") && strings.Contains(m.Text, "refused access") {
			triageTold++
		}
	}
	assert.Equal(t, 1, triageTold, "the triage team is told once")
	assert.Equal(t, workflows.StateTriagedThenCompleted, o.State, "it still closes when PKB shows it done")
}

func appointmentOf(r *testrig.Rig, messageID string) string {
	for _, e := range r.DS.Expect {
		if e.MessageID == messageID {
			return e.AppointmentID
		}
	}
	return ""
}

// Issue 22, case 6: the team's channel is archived after the request was
// routed. The 3/4-SLA reminder is tried a bounded number of times and the
// request goes to triage with Slack's reason; the admins hear of the
// channel once; the escalation still comes at the SLA; and when PKB shows
// the appointment cancelled the request closes although its card cannot
// be edited, and the admins are told of the failed edit.
func TestHazardArchivedChannelStopsNoWaitingRequest(t *testing.T) {
	r := testrig.New(t)
	require.NoError(t, r.Store.ReplaceRules(context.Background(), []store.Rule{{Team: "Cardiology bookings", SlackChannel: "rebook-cardiology", SLAHours: 48}}))
	msg, a := routable(t, r, subject.Cancel)
	require.True(t, a.Start.After(time.Now().Add(4*24*time.Hour)), "the appointment does not pass during the test")
	c := &chain{t: t, r: r}
	var atSLA workflows.RequestStatus
	c.at(time.Hour, func() { r.Slack.RefuseIn("rebook-cardiology", "is_archived") })
	c.at(49*time.Hour, func() {
		atSLA = c.status()
		require.NoError(t, r.Sim.Cancel(a.ID))
	})
	c.watchBetween(50*time.Hour, time.Hour, 52*time.Hour)
	start := time.Now()
	o, closedAt := c.run(activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp}, start)

	assert.True(t, atSLA.Triage, "in triage once Slack refused the reminder")
	assert.Contains(t, atSLA.Reason, "#rebook-cardiology (is_archived)")
	assert.Equal(t, workflows.StateTriagedThenCompleted, o.State)
	assert.Less(t, closedAt.Sub(start), 53*time.Hour, "it closed: nothing held it")
	overdue, admin := 0, 0
	for _, m := range r.Slack.Roots("rebook-triage") {
		if strings.Contains(m.Text, "Overdue") {
			overdue++
		}
	}
	for _, m := range r.Slack.Roots("rebook-admin") {
		if strings.Contains(m.Text, "#rebook-cardiology") && strings.Contains(m.Text, "cannot post") {
			admin++
		}
	}
	assert.Equal(t, 1, overdue, "the escalation came at the SLA")
	assert.Equal(t, 1, admin, "the admins are told of the channel once")
	editFailed := false
	for _, m := range r.Slack.Roots("rebook-admin") {
		editFailed = editFailed || strings.Contains(m.Text, "could not update the card")
	}
	assert.True(t, editFailed, "the failed card edit is reported")
	row, err := r.Store.Request(context.Background(), msg.ID)
	require.NoError(t, err)
	assert.NotNil(t, row.ClosedAt)
}

// Issue 22, case 11: a change request whose appointment is missed (or
// passes) stays open, the team is told once that the patient still needs
// a new appointment, it escalates at its SLA, and it closes when the new
// booking appears. An appointment PKB no longer has (404) sends the
// request to triage with that reason.
func TestHazardEndingsSayWhatIsTrue(t *testing.T) {
	t.Run("change request outlives a missed appointment", func(t *testing.T) {
		r := testrig.New(t)
		msg, a := routable(t, r, subject.Change)
		c := &chain{t: t, r: r}
		c.watch(time.Hour, 60*time.Hour)
		var afterMissed workflows.RequestStatus
		c.at(time.Hour, func() {
			edit(r, func(ds *pkbsim.Dataset) {
				for i := range ds.Appointments {
					if ds.Appointments[i].ID == a.ID {
						ds.Appointments[i].Status, ds.Appointments[i].LastUpdated = "noshow", time.Now()
					}
				}
			})
		})
		c.at(50*time.Hour, func() {
			afterMissed = c.status()
			alsoBooked(r, a, a.ID+"-new", a.Start.AddDate(0, 0, 21), c.env.Now())
		})
		start := time.Now()
		o, closedAt := c.run(activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp}, start)
		assert.Contains(t, []string{workflows.StateRouted, workflows.StateTriaged}, afterMissed.State, "still open after the missed appointment")
		assert.Contains(t, []string{workflows.StateCompleted, workflows.StateTriagedThenCompleted}, o.State)
		assert.Contains(t, o.Note, "rebooked")
		assert.Greater(t, closedAt.Sub(start), 50*time.Hour)
		still, overdue := 0, 0
		for _, text := range thread(r) {
			if strings.Contains(text, "still needs a new appointment") {
				still++
			}
		}
		for _, m := range r.Slack.Messages() {
			if strings.Contains(m.Text, "Overdue") {
				overdue++
			}
		}
		assert.Equal(t, 1, still, "the team is told once")
		assert.Equal(t, 1, overdue, "it escalated at its SLA")
	})
	t.Run("appointment PKB no longer has", func(t *testing.T) {
		r := testrig.New(t)
		msg, a := routable(t, r, subject.Cancel)
		c := &chain{t: t, r: r}
		var gone workflows.RequestStatus
		c.at(time.Hour, func() {
			edit(r, func(ds *pkbsim.Dataset) {
				for i := range ds.Appointments {
					if ds.Appointments[i].ID == a.ID {
						ds.Appointments = append(ds.Appointments[:i], ds.Appointments[i+1:]...)
						break
					}
				}
			})
		})
		c.at(26*time.Hour, func() {
			gone = c.status()
			c.env.CancelWorkflow()
		})
		env := realEnv(r)
		c.env = env
		c.count = func(int) {}
		for _, e := range c.events {
			e := e
			env.RegisterDelayedCallback(e.do, e.after)
		}
		env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp})
		assert.True(t, gone.Triage)
		assert.Contains(t, gone.Reason, "PKB no longer has this appointment")
	})
}

// Issue 22, case 8: the daily probe of a search that names no patient
// counts as allowed only when PKB's answer holds a waiting request's
// appointment Rebook knows was updated in the window asked for. A 200
// with an empty Bundle keeps the watcher patient by patient, and each
// switch of mode is told to the admins.
func TestHazardOrgWideProbeMustProveItself(t *testing.T) {
	r := testrig.New(t)
	msg, _ := routable(t, r, subject.Cancel)
	routeThenStop(t, r, msg)
	clock := time.Now().Add(10 * time.Minute)
	r.Set.Appointments.Now = func() time.Time { return clock }
	r.Set.Appointments.CallsPerHour = 3600
	watch := func() activities.WatchResult {
		res, err := r.Set.Appointments.WatchAppointments(context.Background())
		require.NoError(t, err)
		return res
	}
	told := func(s string) int {
		n := 0
		for _, m := range r.Slack.Roots("rebook-admin") {
			if strings.Contains(m.Text, s) {
				n++
			}
		}
		return n
	}

	r.Sim.SetOrgWideSearchEmpty(true)
	res := watch()
	assert.Equal(t, activities.WatchPatientScoped, res.Mode, "an empty 200 proves nothing")
	assert.Equal(t, 1, res.Patients, "the request's patient is still checked")

	r.Sim.SetOrgWideSearchEmpty(false)
	r.Sim.SetOrgWideSearch(true)
	clock = clock.Add(25 * time.Hour)
	assert.Equal(t, activities.WatchOrgWide, watch().Mode, "an answer holding the known appointment proves it")
	assert.Equal(t, 1, told("all patients at once"))

	r.Sim.SetOrgWideSearch(false)
	r.Sim.SetOrgWideSearchEmpty(true)
	clock = clock.Add(25 * time.Hour)
	res = watch()
	assert.Equal(t, activities.WatchPatientScoped, res.Mode, "back to patient by patient when the answer stops proving itself")
	assert.Equal(t, 1, told("patient by patient"))
	assert.Equal(t, 1, res.Patients)
}

// press answers through the staff-action update, as a Slack button or
// the web page would; the answer or the refusal lands in said and refused
// once the workflow has handled it.
func (c *chain) press(a workflows.StaffAction, said *string, refused *error) {
	c.env.UpdateWorkflow(workflows.UpdateStaffAction, a.Action+a.Candidate, &testsuite.TestUpdateCallback{
		OnReject:   func(err error) { *refused = err },
		OnAccept:   func() {},
		OnComplete: func(res any, err error) { *said, _ = res.(string); *refused = err },
	}, a)
}

// Issue 22, case 4: the team cancels a change request's appointment
// meaning to rebook later, while the PAS moves the patient's other
// appointment in the specialty by cancel-and-book. The new booking could
// be either's, so the request does not close: the team is asked in the
// thread "Is this the rebooking?". No keeps it open and the booking is
// not asked about again; the next new booking is asked about, and Yes
// closes the request.
func TestHazardOneBookingIsNotEveryRequestsRebooking(t *testing.T) {
	r := testrig.New(t)
	msg, a := routable(t, r, subject.Change)
	other := alsoBooked(r, a, "appt-other-series", a.Start.AddDate(0, 1, 0), a.Created.AddDate(0, -1, 0))

	c := &chain{t: t, r: r}
	c.watch(30*time.Minute, 12*time.Hour)
	var asked, afterNo, askedAgain workflows.RequestStatus
	var noSaid, yesSaid string
	var noErr, yesErr, staleErr error
	var firstNew, secondNew string
	c.at(time.Hour, func() {
		require.NoError(t, r.Sim.Cancel(a.ID))
		var err error
		firstNew, err = r.Sim.Rebook(other.ID, other.Start.AddDate(0, 0, 7))
		require.NoError(t, err)
	})
	c.at(2*time.Hour, func() {
		asked = c.status()
		var staleSaid string
		c.press(workflows.StaffAction{Action: workflows.ActionRebookingYes, User: "U1", Candidate: "appt-not-asked"}, &staleSaid, &staleErr)
		c.press(workflows.StaffAction{Action: workflows.ActionRebookingNo, User: "U1", Candidate: firstNew}, &noSaid, &noErr)
	})
	c.at(3*time.Hour, func() {
		afterNo = c.status()
		secondNew = alsoBooked(r, a, "appt-team-rebooked", a.Start.AddDate(0, 0, 14), c.env.Now()).ID
	})
	c.at(5*time.Hour, func() {
		askedAgain = c.status()
		c.press(workflows.StaffAction{Action: workflows.ActionRebookingYes, User: "U2", Candidate: secondNew}, &yesSaid, &yesErr)
	})
	start := time.Now()
	o, closedAt := c.run(activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp}, start)

	require.NotNil(t, asked.Asking, "the team is asked about the PAS's new booking")
	assert.Equal(t, firstNew, asked.Asking.AppointmentID)
	assert.Contains(t, []string{workflows.StateRouted, workflows.StateTriaged}, asked.State, "open while asked")
	assert.Error(t, staleErr, "an answer about a booking not asked about is refused")
	require.NoError(t, noErr)
	assert.Contains(t, noSaid, "stays open")
	assert.Nil(t, afterNo.Asking)
	assert.Contains(t, []string{workflows.StateRouted, workflows.StateTriaged}, afterNo.State, "No keeps it open")
	require.NotNil(t, askedAgain.Asking, "the team's own rebooking is asked about")
	assert.Equal(t, secondNew, askedAgain.Asking.AppointmentID)
	require.NoError(t, yesErr)
	assert.Contains(t, yesSaid, "closed as rebooked")
	assert.Contains(t, []string{workflows.StateCompleted, workflows.StateTriagedThenCompleted}, o.State)
	assert.Contains(t, o.Note, "confirmed the rebooking")
	assert.Equal(t, "U2", o.ClosedBy)
	assert.WithinDuration(t, start.Add(5*time.Hour), closedAt, time.Minute)
	questions := 0
	for _, m := range r.Slack.Messages() {
		if strings.Contains(m.Text, "Is this the rebooking?") {
			questions++
			assert.NotEmpty(t, m.Button(slackmsg.ActionRebookingYes), "the question has a Yes button")
		}
	}
	assert.Equal(t, 2, questions, "each booking is asked about once")
	trail, err := r.Store.AuditTrail(context.Background(), workflows.RequestWorkflowID(msg.ID))
	require.NoError(t, err)
	answers := map[string]string{}
	for _, e := range trail {
		if e.Action == workflows.ActionRebookingYes || e.Action == workflows.ActionRebookingNo {
			answers[e.Detail["appointment"]] = e.Action + " by " + e.Actor
		}
	}
	assert.Equal(t, map[string]string{firstNew: "rebooking-no by U1", secondNew: "rebooking-yes by U2"}, answers, "each answer is audited")
}
