package workflows_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/testrig"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/rebookhq/rebook/workflows"
)

// The hazard tests run a workflow in Temporal's test environment with the
// real activities against the PKB simulator, PostgreSQL and the fake
// Slack: the path a real run takes, on the test clock. `go test -run
// Hazard ./...` runs them all; docs/clinical-safety.md cites them.

// keeperState queries the TokenKeeper's state.
func keeperState(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.KeeperStatus {
	v, err := env.QueryWorkflow(workflows.QueryTokenKeeper)
	require.NoError(t, err)
	var st workflows.KeeperStatus
	require.NoError(t, v.Get(&st))
	return st
}

// stopAt queries a request's state after d on the test clock and then
// cancels it; the state is filled in once ExecuteWorkflow returns.
func stopAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, d time.Duration) *workflows.RequestStatus {
	status := new(workflows.RequestStatus)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryState)
		require.NoError(t, err)
		require.NoError(t, v.Get(status))
		env.CancelWorkflow()
	}, d)
	return status
}

func realEnv(r *testrig.Rig) *testsuite.TestWorkflowEnvironment {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	workflows.Register(env)
	activities.Register(env, r.Set)
	return env
}

// runScheduled runs a workflow that takes no input, as its Schedule would,
// to its end, and reads its result into out.
func runScheduled(t *testing.T, r *testrig.Rig, wf string, out any) {
	t.Helper()
	env := realEnv(r)
	env.ExecuteWorkflow(wf)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.NoError(t, env.GetWorkflowResult(out))
}

// Case 2: a message PKB stores late, with a timestamp the cursor has
// passed or equal to the last one read, is still started.
func TestHazardLateMessageBehindTheCursorIsStarted(t *testing.T) {
	r := testrig.New(t)
	r.Set.Poll.Overlap = 10 * time.Minute
	poll := func() workflows.PollResult {
		var res workflows.PollResult
		runScheduled(t, r, workflows.PollMessagesWorkflow, &res)
		return res
	}
	first := poll()
	require.Positive(t, first.Started)

	ds := r.Sim.Dataset()
	var newest pkbsim.Message
	for _, m := range ds.Messages {
		if m.Pending && m.Timestamp > newest.Timestamp {
			newest = m
		}
	}
	early, same := newest, newest
	early.ID, early.Timestamp = "msg-late-early", newest.Timestamp-5
	same.ID = "msg-late-same-ms"
	ds.Messages = append(ds.Messages, early, same)
	r.Sim.Load(ds)

	second := poll()
	assert.Equal(t, 2, second.Started, "both late messages started, nothing else again")
	assert.True(t, r.Requests.Started["msg-late-early"], "a message 5 ms behind the cursor")
	assert.True(t, r.Requests.Started["msg-late-same-ms"], "a message in the cursor's millisecond")
}

// Case 2, beyond the overlap: a message PKB stores hours late, behind the
// poll's overlap, is missed by the poll and started by the daily
// reconciliation, which tells the admins how many it started. Run again,
// it starts nothing and says all were known.
func TestHazardMessageLaterThanTheOverlapIsStartedByReconciliation(t *testing.T) {
	r := testrig.New(t)
	r.Set.Poll.Overlap = 10 * time.Minute
	var poll workflows.PollResult
	runScheduled(t, r, workflows.PollMessagesWorkflow, &poll)
	require.Positive(t, poll.Started)

	ds := r.Sim.Dataset()
	var newest pkbsim.Message
	for _, m := range ds.Messages {
		if m.Pending && m.Timestamp > newest.Timestamp {
			newest = m
		}
	}
	late := newest
	late.ID, late.Timestamp = "msg-stored-hours-late", newest.Timestamp-(2*time.Hour).Milliseconds()
	ds.Messages = append(ds.Messages, late)
	r.Sim.Load(ds)

	runScheduled(t, r, workflows.PollMessagesWorkflow, &poll)
	assert.Zero(t, poll.Started, "two hours behind the cursor: past the overlap, the poll does not see it")
	assert.False(t, r.Requests.Started[late.ID])

	var rec workflows.ReconcileResult
	runScheduled(t, r, workflows.ReconcileMessagesWorkflow, &rec)
	assert.Equal(t, 1, rec.Started)
	assert.True(t, r.Requests.Started[late.ID], "the reconciliation started it")
	assert.Greater(t, rec.Read, rec.Started, "it read the window's known requests too")
	told := r.Slack.Roots("rebook-admin")
	require.NotEmpty(t, told)
	assert.Contains(t, told[len(told)-1].Text, "1 of ")
	assert.Contains(t, told[len(told)-1].Text, "missed by the poll")

	runScheduled(t, r, workflows.ReconcileMessagesWorkflow, &rec)
	assert.Zero(t, rec.Started, "run again, it starts nothing")
	told = r.Slack.Roots("rebook-admin")
	assert.Contains(t, told[len(told)-1].Text, "all already known")
}

// Case 8: a message that names no patient is never matched across all
// patients: it goes to triage with that reason.
func TestHazardMessageWithoutPatientGoesToTriage(t *testing.T) {
	r := testrig.New(t)
	ds := r.Sim.Dataset()
	m := r.Message(r.Expect(pkbsim.KindRoutable).MessageID)
	m.ID, m.PatientID, m.SenderID = "msg-no-patient", "", ""
	ds.Messages = append(ds.Messages, m)
	r.Sim.Load(ds)

	env := realEnv(r)
	status := stopAt(t, env, time.Hour)
	env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, activities.MessageRef{ID: m.ID, Timestamp: m.Timestamp})

	assert.True(t, status.Triage)
	assert.Equal(t, activities.TriageTeam, status.Team)
	assert.Contains(t, status.Reason, "names no patient")
	row, err := r.Store.Request(context.Background(), m.ID)
	require.NoError(t, err)
	assert.True(t, row.Triage)
	assert.Empty(t, row.AppointmentID, "matched to no one's appointment")
	assert.Len(t, r.Slack.Roots("rebook-triage"), 1)
}

// chain runs a request through all its runs as a server would: each
// continue-as-new starts the next run, with what it carried, in a fresh
// test environment at the time the last one stopped. Events fire at their
// time from the chain's start, whichever run is current.
//
// The test environment keeps no history, so the chain counts one as the
// server would write it, erring high: the start and its workflow task (4),
// each activity with the workflow task that follows it (6), each timer
// started (1), fired with its workflow task (4) or cancelled (1), each
// event from outside with its workflow task (4), version markers and
// search-attribute upserts (4 a run), and the continue-as-new (1). The
// workflow reads the count as its history length.
type chain struct {
	t       testing.TB
	r       *testrig.Rig
	events  []*timed
	lengths []int // each run's history, as counted
	env     *testsuite.TestWorkflowEnvironment
	// count adds to the current run's count; total is every run's so far,
	// the current one's included; signals counts the watcher's signals.
	count   func(int)
	total   int
	signals int
	// others, if set, says which workflow ids are other waiting
	// requests, not the one run here.
	others func(workflowID string) bool
}

type timed struct {
	after time.Duration
	do    func()
	done  bool
	quiet bool // not a signal: writes no history itself
}

func (c *chain) at(after time.Duration, do func()) {
	c.events = append(c.events, &timed{after: after, do: do})
}

// quietly runs do at after, counting only what it signals.
func (c *chain) quietly(after time.Duration, do func()) {
	c.events = append(c.events, &timed{after: after, do: do, quiet: true})
}

// watch runs the real watcher every interval until the chain has run for
// until, on the test clock, its snapshots signalled to the current run:
// how a request learns what PKB shows between its own daily checks.
func (c *chain) watch(every, until time.Duration) { c.watchBetween(every, every, until) }

// watchBetween runs the watcher every interval from from until until.
func (c *chain) watchBetween(from, every, until time.Duration) {
	c.r.Set.Appointments.Now = func() time.Time { return c.env.Now() }
	c.r.Set.Appointments.CallsPerHour = 3600
	c.r.Requests.Forward = func(wid string, seen []activities.AppointmentUpdate) {
		if c.others != nil && c.others(wid) {
			return // another waiting request, not run here
		}
		c.signals++
		c.count(4)
		c.env.SignalWorkflow(workflows.SignalAppointmentsSeen, seen)
	}
	for at := from; at <= until; at += every {
		c.quietly(at, func() {
			_, err := c.r.Set.Appointments.WatchAppointments(context.Background())
			require.NoError(c.t, err)
		})
	}
}

// status queries the current run.
func (c *chain) status() workflows.RequestStatus {
	v, err := c.env.QueryWorkflow(workflows.QueryState)
	require.NoError(c.t, err)
	var st workflows.RequestStatus
	require.NoError(c.t, v.Get(&st))
	return st
}

// run takes the request from start to its end and says how it ended and
// when.
func (c *chain) run(ref activities.MessageRef, start time.Time) (workflows.Outcome, time.Time) {
	var carried *workflows.Carried
	now := start
	for range 1000 {
		env := realEnv(c.r)
		c.env = env
		env.SetStartTime(now)
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.RequestWorkflowID(ref.ID)})
		n := 0
		count := func(k int) { n += k; c.total += k; env.SetCurrentHistoryLength(n) }
		c.count = count
		count(4 + 4)
		env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) { count(6) })
		env.SetOnTimerScheduledListener(func(string, time.Duration) { count(1) })
		env.SetOnTimerFiredListener(func(string) { count(4) })
		env.SetOnTimerCanceledListener(func(string) { count(1) })
		for _, e := range c.events {
			if e.done {
				continue
			}
			env.RegisterDelayedCallback(func() {
				e.done = true
				if !e.quiet {
					count(4)
				}
				e.do()
			}, start.Add(e.after).Sub(now))
		}
		env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, ref, carried)
		require.True(c.t, env.IsWorkflowCompleted())
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			count(1)
			c.lengths = append(c.lengths, n)
			carried = nil
			require.NoError(c.t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &ref, &carried))
			require.NotNil(c.t, carried)
			now = env.Now()
			continue
		}
		require.NoError(c.t, err)
		c.lengths = append(c.lengths, n)
		var o workflows.Outcome
		require.NoError(c.t, env.GetWorkflowResult(&o))
		return o, env.Now()
	}
	c.t.Fatal("the request never ended")
	return workflows.Outcome{}, time.Time{}
}

// routable is the scenario's first routable request of a type, its
// message and its appointment.
func routable(t testing.TB, r *testrig.Rig, typ subject.RequestType) (pkbsim.Message, pkbsim.Appointment) {
	for _, e := range r.DS.Expect {
		if e.Kind == pkbsim.KindRoutable && e.RequestType == typ {
			for _, a := range r.DS.Appointments {
				if a.ID == e.AppointmentID {
					return r.Message(e.MessageID), a
				}
			}
		}
	}
	t.Fatalf("scenario has no routable %s request", typ)
	return pkbsim.Message{}, pkbsim.Appointment{}
}

// edit changes what the simulator serves.
func edit(r *testrig.Rig, change func(ds *pkbsim.Dataset)) {
	ds := r.Sim.Dataset()
	change(&ds)
	r.Sim.Load(ds)
}

// alsoBooked books a's patient, in a's specialty and type, another
// appointment (id) starting at start, created (and last updated) at
// created, and returns it.
func alsoBooked(r *testrig.Rig, a pkbsim.Appointment, id string, start, created time.Time) pkbsim.Appointment {
	n := a
	n.ID, n.PlacerID, n.Status = id, "placer-"+id, "booked"
	n.Start, n.End = start, start.Add(a.End.Sub(a.Start))
	n.Created, n.LastUpdated = created, created
	edit(r, func(ds *pkbsim.Dataset) { ds.Appointments = append(ds.Appointments, n) })
	return n
}

func thread(r *testrig.Rig) []string {
	var out []string
	for _, m := range r.Slack.Messages() {
		if m.ThreadTS != "" && m.ThreadTS != m.TS {
			out = append(out, m.Text)
		}
	}
	return out
}

// Case 1: a change request closes as rebooked only on a booked appointment
// new since the request. An update to the patient's older appointment in
// the same specialty, or a new one only pending, is not evidence; the team
// is told "cancelled, not yet rebooked" and the request stays open until a
// real rebooking.
func TestHazardChangeClosesOnlyOnANewBooking(t *testing.T) {
	r := testrig.New(t)
	msg, a := routable(t, r, subject.Change)
	older := alsoBooked(r, a, "appt-older-followup", a.Start.AddDate(0, 2, 0), a.Created.AddDate(0, -1, 0))

	c := &chain{t: t, r: r}
	c.watch(10*time.Minute, 12*time.Hour)
	var atThree workflows.RequestStatus
	c.at(time.Hour, func() {
		require.NoError(t, r.Sim.Cancel(a.ID))
		edit(r, func(ds *pkbsim.Dataset) {
			for i := range ds.Appointments {
				if ds.Appointments[i].ID == older.ID {
					ds.Appointments[i].Comment, ds.Appointments[i].LastUpdated = "Bring your medication list", time.Now()
				}
			}
			pending := a
			pending.ID, pending.PlacerID, pending.Status = "appt-proposed", "placer-proposed", "pending"
			pending.Start, pending.End = a.Start.AddDate(0, 0, 7), a.End.AddDate(0, 0, 7)
			pending.Created, pending.LastUpdated = time.Now(), time.Now()
			ds.Appointments = append(ds.Appointments, pending)
		})
	})
	c.at(3*time.Hour, func() {
		atThree = c.status()
		_, err := r.Sim.Rebook(a.ID, a.Start.AddDate(0, 0, 14))
		require.NoError(t, err)
	})
	start := time.Now()
	o, closedAt := c.run(activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp}, start)

	assert.Contains(t, []string{workflows.StateRouted, workflows.StateTriaged}, atThree.State, "open at 3 h: cancelled, the older follow-up updated, a booking only pending")
	assert.True(t, atThree.Progress.Cancelled)
	assert.False(t, atThree.Progress.NewBooking)
	assert.Contains(t, []string{workflows.StateCompleted, workflows.StateTriagedThenCompleted}, o.State)
	assert.Contains(t, o.Note, "cancelled and rebooked")
	assert.GreaterOrEqual(t, closedAt.Sub(start), 3*time.Hour, "closed only after the real rebooking")
	told := 0
	for _, text := range thread(r) {
		if strings.Contains(text, "cancelled, not yet rebooked") {
			told++
		}
	}
	assert.Equal(t, 1, told, "the team is told once that the patient still needs a booking")
}

// Case 9: a request whose appointment ends without the change (did not
// attend, attended, entered in error, or passed) is closed with that
// outcome and the team told; a long wait continues as new.
func TestHazardRequestEndsWithItsAppointment(t *testing.T) {
	for _, tc := range []struct {
		status, note string
	}{{"noshow", "did not attend"}, {"fulfilled", "was attended"}, {"entered-in-error", "entered in error"}} {
		t.Run(tc.status, func(t *testing.T) {
			r := testrig.New(t)
			msg, a := routable(t, r, subject.Cancel)
			c := &chain{t: t, r: r}
			c.watch(10*time.Minute, 12*time.Hour)
			c.at(time.Hour, func() {
				edit(r, func(ds *pkbsim.Dataset) {
					for i := range ds.Appointments {
						if ds.Appointments[i].ID == a.ID {
							ds.Appointments[i].Status, ds.Appointments[i].LastUpdated = tc.status, time.Now()
						}
					}
				})
			})
			start := time.Now()
			o, closedAt := c.run(activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp}, start)
			assert.Equal(t, workflows.StateEnded, o.State)
			assert.Contains(t, o.Note, tc.note)
			assert.Less(t, closedAt.Sub(start), 3*time.Hour, "found by the watcher's next check of the patient")
			assert.True(t, slices.ContainsFunc(thread(r), func(s string) bool { return strings.Contains(s, tc.note) }), "the team is told")
			row, err := r.Store.Request(context.Background(), msg.ID)
			require.NoError(t, err)
			assert.Equal(t, workflows.StateEnded, row.State)
		})
	}
	t.Run("passed", func(t *testing.T) {
		r := testrig.New(t)
		msg, a := routable(t, r, subject.Cancel)
		c := &chain{t: t, r: r}
		start := a.Start.Add(-time.Hour)
		o, closedAt := c.run(activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp}, start)
		assert.Equal(t, workflows.StateEnded, o.State)
		assert.Contains(t, o.Note, "passed with no change")
		assert.WithinDuration(t, a.Start.Add(activities.PassedGrace), closedAt, 2*time.Minute)
	})
}

// Case 9: a 30-day wait, checked every 2 hours (the watcher's search of the
// patient's appointments, signalled to the request, as a watcher run
// would), keeps each run's history at or below 300 events.
func TestHazardThirtyDayWaitKeepsHistoryBounded(t *testing.T) {
	r := testrig.New(t)
	msg, a := routable(t, r, subject.Cancel)
	c := &chain{t: t, r: r}
	c.at(30*24*time.Hour, func() { require.NoError(t, r.Sim.Cancel(a.ID)) })
	for k := 1; k <= 31*12; k++ {
		c.at(time.Duration(k)*2*time.Hour+time.Minute, func() {
			seen, err := r.Set.Appointments.CheckAppointment(context.Background(), activities.CheckInput{
				AppointmentID: a.ID, PatientID: a.PatientID, SpecialtyCode: a.SpecialtyCode, RequestType: "cancel"})
			require.NoError(t, err)
			c.env.SignalWorkflow(workflows.SignalAppointmentsSeen, seen)
		})
	}
	start := a.Start.Add(-40 * 24 * time.Hour)
	before := r.Sim.Counters()
	o, closedAt := c.run(activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp}, start)
	after := r.Sim.Counters()

	assert.Contains(t, []string{workflows.StateCompleted, workflows.StateTriagedThenCompleted}, o.State)
	assert.GreaterOrEqual(t, closedAt.Sub(start), 30*24*time.Hour)
	assert.Greater(t, len(c.lengths), 4, "the wait continued as new")
	for i, n := range c.lengths {
		assert.LessOrEqual(t, n, 300, "run %d", i+1)
	}
	t.Logf("%d runs; longest %d events; PKB calls %v", len(c.lengths), slices.Max(c.lengths), diff(before, after))
}

func diff(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Case 7: a claim whose write lands after the close's does not make a
// closed request read "claimed", and the clicker is told it closed.
func TestHazardClaimRacingCloseKeepsTheRequestClosed(t *testing.T) {
	r := testrig.New(t)
	msg, a := routable(t, r, subject.Cancel)
	env := realEnv(r)
	closeWritten := make(chan struct{})
	env.OnActivity(routeA.RecordState, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.StateInput) error {
		if in.State == workflows.StateClaimed {
			select { // the claim's write lands last
			case <-closeWritten:
			case <-time.After(5 * time.Second):
			}
		}
		err := r.Set.Route.RecordState(ctx, in)
		if in.Closed {
			close(closeWritten)
		}
		return err
	})
	var answer string
	var answerErr error
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(workflows.UpdateStaffAction, workflows.ActionClaim, &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { answerErr = err },
			OnAccept:   func() {},
			OnComplete: func(res any, err error) { answer, _ = res.(string); answerErr = err },
		}, workflows.StaffAction{Action: workflows.ActionClaim, User: "U1"})
		env.SignalWorkflow(workflows.SignalAppointmentChanged, activities.AppointmentUpdate{AppointmentID: a.ID, Status: "cancelled", Start: a.Start})
	}, time.Hour)
	env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())

	row, err := r.Store.Request(context.Background(), msg.ID)
	require.NoError(t, err)
	assert.NotEqual(t, workflows.StateClaimed, row.State, "the late claim did not overwrite the close")
	assert.NotNil(t, row.ClosedAt)
	assert.Empty(t, answer)
	require.Error(t, answerErr)
	assert.Contains(t, answerErr.Error(), "closed while you claimed it")
}

// Case 10: a reminder whose response was lost is found on retry, not
// posted twice; a retried state write is audited once.
func TestHazardRetriedNoticesAndAuditRowsAreOnce(t *testing.T) {
	r := testrig.New(t)
	ctx := context.Background()
	ch := r.Slack.AddChannel("rebook-cardiology")
	root, err := r.Set.Notices.Out.Say(ctx, ch, "", "card")
	require.NoError(t, err)
	in := activities.NotifyInput{Channel: ch, ThreadTS: root, Text: "Reminder: RB-1 is due within 6 h (SLA 24 h).", Key: workflows.RequestWorkflowID("m1") + "#reminder"}
	r.Slack.FailNext("chat.postMessage", 1)
	require.Error(t, r.Set.Notices.Notify(ctx, in), "the first answer is lost")
	require.NoError(t, r.Set.Notices.Notify(ctx, in))
	require.NoError(t, r.Set.Notices.Notify(ctx, in))
	posted := 0
	for _, text := range thread(r) {
		if text == in.Text {
			posted++
		}
	}
	assert.Equal(t, 1, posted)

	m := r.Message(r.Expect(pkbsim.KindRoutable).MessageID)
	wid := workflows.RequestWorkflowID(m.ID)
	require.NoError(t, r.Store.RecordReceived(ctx, store.Request{MessageID: m.ID, WorkflowID: wid, State: workflows.StateReceived, ReceivedAt: time.Now()}))
	st := activities.StateInput{MessageID: m.ID, WorkflowID: wid, State: workflows.StateClaimed, Actor: "U1", Action: workflows.StateClaimed, ClaimedBy: "U1", Seq: 1}
	require.NoError(t, r.Set.Route.RecordState(ctx, st))
	require.NoError(t, r.Set.Route.RecordState(ctx, st))
	trail, err := r.Store.AuditTrail(ctx, wid)
	require.NoError(t, err)
	assert.Len(t, trail, 1)
}

// Case 3: PKB rejecting the client's credentials (a rotated secret) does
// not stop the TokenKeeper: the grant says why, the admins are told once
// what to fix, and once it is fixed the keeper resumes by itself.
func TestHazardKeeperSurvivesARejectedClientSecret(t *testing.T) {
	r := testrig.New(t)
	good := *r.Set.Grant.OAuth
	bad := good
	bad.ClientSecret = "rotated-at-pkb"
	r.Set.Grant.OAuth = &bad

	env := realEnv(r)
	r.Clock = env.Now
	var during, after workflows.KeeperStatus
	query := func(into *workflows.KeeperStatus) { *into = keeperState(t, env) }
	// oauth2 stamps a token's expiry on the wall clock: the test clock
	// stays within minutes of it, and an activity's nudge starts the refresh.
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.SignalRefreshNow, nil) }, time.Minute)
	env.RegisterDelayedCallback(func() { query(&during); r.Set.Grant.OAuth = &good }, 5*time.Minute)
	env.RegisterDelayedCallback(func() { query(&after); env.CancelWorkflow() }, 8*time.Minute)
	env.ExecuteWorkflow(workflows.TokenKeeperWorkflow, workflows.KeeperInput{ClientID: "c"})
	require.True(t, env.IsWorkflowCompleted())
	var canceled *temporal.CanceledError
	require.ErrorAs(t, env.GetWorkflowError(), &canceled, "the keeper ran until the test stopped it")

	assert.Equal(t, workflows.KeeperNeedsConfig, during.State)
	assert.Contains(t, during.LastError, "invalid_client")
	assert.Equal(t, workflows.KeeperHealthy, after.State, "resumed by itself once the secret was fixed")
	g, err := r.Store.Grant(context.Background(), "c")
	require.NoError(t, err)
	assert.Equal(t, store.GrantHealthy, g.Status)
	var alerts, restored int
	for _, m := range r.Slack.Roots("rebook-admin") {
		switch {
		case strings.Contains(m.Text, "PKB_CLIENT_SECRET"):
			alerts++
			assert.NotContains(t, m.Text, "grant access again", "a configuration fault is not a re-grant")
		case strings.Contains(m.Text, "access is back"):
			restored++
		}
	}
	assert.Equal(t, 1, alerts, "told once, with what to fix")
	assert.Equal(t, 1, restored)
}

// Case 6: a 403 on every call pauses work and a probe resumes it; the
// requests are not triaged as empty cards. A 403 on one patient's record
// sends that request to triage with that reason.
func TestHazardForbiddenGrantPausesButForbiddenPatientTriages(t *testing.T) {
	t.Run("every call refused", func(t *testing.T) {
		r := testrig.New(t)
		msg, _ := routable(t, r, subject.Cancel)
		r.Sim.SetFaults(pkbsim.Faults{ErrorRate: 1, ErrorStatus: 403})
		env := realEnv(r)
		var paused store.Grant
		env.RegisterDelayedCallback(func() {
			var err error
			paused, err = r.Store.Grant(context.Background(), "c")
			require.NoError(t, err)
			r.Sim.SetFaults(pkbsim.Faults{})
			ok, err := r.Set.Grant.ProbeAccess(context.Background(), "c")
			require.NoError(t, err)
			require.True(t, ok, "PKB answers again")
		}, 3*time.Second) // the test environment gives an activity 10 attempts, 1 s apart here
		status := stopAt(t, env, 30*time.Minute)
		env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp})

		assert.Equal(t, store.GrantNeedsGrant, paused.Status, "work paused")
		assert.Equal(t, store.NeedForbidden, paused.NeedKind)
		assert.NotContains(t, status.Reason, "forbidden")
		assert.NotContains(t, status.Reason, "403")
		assert.NotEmpty(t, status.RequestType, "read once PKB answered again")
	})
	t.Run("one patient's record refused", func(t *testing.T) {
		r := testrig.New(t)
		msg, _ := routable(t, r, subject.Cancel)
		r.Sim.SetFaults(pkbsim.Faults{ErrorRate: 1, ErrorStatus: 403, Paths: []string{"/fhir/Patient"}})
		env := realEnv(r)
		status := stopAt(t, env, time.Hour)
		env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp})
		assert.True(t, status.Triage)
		assert.Contains(t, status.Reason, "refused access to this patient's record")
		g, err := r.Store.Grant(context.Background(), "c")
		require.NoError(t, err)
		assert.Equal(t, store.GrantHealthy, g.Status, "one patient's refusal pauses nothing")
	})
}

// Case 4: a rule naming a channel Slack will not take (a typo, archived, or
// closed to the app) sends the request to triage with the reason, and the
// admins hear of the channel once, however many requests it refuses.
func TestHazardUndeliverableChannelGoesToTriage(t *testing.T) {
	r := testrig.New(t)
	require.NoError(t, r.Store.ReplaceRules(context.Background(), []store.Rule{{Team: "Outpatients", SlackChannel: "rebook-outpatinets", SLAHours: 48}}))
	var ids []string
	for _, e := range r.DS.Expect {
		if e.Kind == pkbsim.KindRoutable && len(ids) < 2 {
			ids = append(ids, e.MessageID)
		}
	}
	for _, id := range ids {
		m := r.Message(id)
		env := realEnv(r)
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.RequestWorkflowID(m.ID)})
		status := stopAt(t, env, time.Hour)
		env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, activities.MessageRef{ID: m.ID, Timestamp: m.Timestamp})
		assert.True(t, status.Triage, id)
		assert.Contains(t, status.Reason, "#rebook-outpatinets (channel_not_found)")
	}
	assert.Len(t, r.Slack.Roots("rebook-triage"), 2, "both cards are in triage")
	alerts := 0
	for _, m := range r.Slack.Roots("rebook-admin") {
		if strings.Contains(m.Text, "#rebook-outpatinets") {
			alerts++
		}
	}
	assert.Equal(t, 1, alerts, "the admins are told once for the channel")
}

// Case 6: with every call refused, the keeper pauses work, tells the
// admins once, probes PKB each minute and resumes work by itself when PKB
// answers again.
func TestHazardKeeperProbesAForbiddenGrantBackToHealth(t *testing.T) {
	r := testrig.New(t)
	env := realEnv(r)
	r.Clock = env.Now
	var during, after workflows.KeeperStatus
	query := func(into *workflows.KeeperStatus) { *into = keeperState(t, env) }
	env.RegisterDelayedCallback(func() {
		r.Sim.SetFaults(pkbsim.Faults{ErrorRate: 1, ErrorStatus: 403})
		// What an activity does when a call naming no patient is refused too.
		_, err := r.Store.PauseGrant(context.Background(), "c", store.NeedForbidden, "PKB refuses every call (HTTP 403)", nil)
		require.NoError(t, err)
		env.SignalWorkflow(workflows.SignalRefreshNow, nil)
	}, time.Minute)
	env.RegisterDelayedCallback(func() { query(&during); r.Sim.SetFaults(pkbsim.Faults{}) }, 5*time.Minute)
	env.RegisterDelayedCallback(func() { query(&after); env.CancelWorkflow() }, 8*time.Minute)
	env.ExecuteWorkflow(workflows.TokenKeeperWorkflow, workflows.KeeperInput{ClientID: "c"})
	var canceled *temporal.CanceledError
	require.ErrorAs(t, env.GetWorkflowError(), &canceled, "the keeper ran until the test stopped it")

	assert.Equal(t, workflows.KeeperForbidden, during.State)
	assert.Equal(t, workflows.KeeperHealthy, after.State, "resumed by the probe")
	g, err := r.Store.Grant(context.Background(), "c")
	require.NoError(t, err)
	assert.Equal(t, store.GrantHealthy, g.Status, "work resumes")
	alerts := 0
	for _, m := range r.Slack.Roots("rebook-admin") {
		if strings.Contains(m.Text, "refuses every call") {
			alerts++
		}
	}
	assert.Equal(t, 1, alerts)
}

// Case 4: a team channel where every post keeps failing for another reason
// is tried a bounded number of times, then the request goes to triage; it
// never fails or sticks.
func TestHazardSlackThatKeepsFailingEndsInTriage(t *testing.T) {
	r := testrig.New(t)
	require.NoError(t, r.Store.ReplaceRules(context.Background(), []store.Rule{{Team: "Cardiology bookings", SlackChannel: "rebook-cardiology", SLAHours: 48}}))
	r.Slack.RefuseIn("rebook-cardiology", "fatal_error")
	msg, _ := routable(t, r, subject.Cancel)
	env := realEnv(r)
	status := stopAt(t, env, 2*time.Hour)
	env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp})
	assert.True(t, status.Triage)
	assert.Contains(t, status.Reason, "kept failing to post the card in #rebook-cardiology")
	assert.Len(t, r.Slack.Roots("rebook-triage"), 1)
	assert.Empty(t, r.Slack.Roots("rebook-cardiology"))
	assert.Empty(t, r.Slack.Roots("rebook-admin"), "not a channel fault: no alert")
}
