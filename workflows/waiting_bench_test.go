package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/testrig"
	"github.com/rebookhq/rebook/internal/refs"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/rebookhq/rebook/workflows"
)

// BenchmarkWaitingRequestHistory measures the history one waiting request
// adds a day, among 1,000 and 10,000 waiting (the others in the read model
// in steady state, checked every 4 hours), on the test clock: the real
// workflow, its own daily check, and the real watcher every 10 minutes
// with the default budget, its snapshots signalled to the request, from
// day 4.5. PKB shows nothing new until the PAS cancels the appointment on
// day 10. The figures are over days 5 to 9, past the SLA's reminder and
// escalation and the watcher's first look.
//
//	go test -run '^$' -bench WaitingRequestHistory -benchtime 1x ./workflows
func BenchmarkWaitingRequestHistory(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("waiting=%d", n), func(b *testing.B) {
			for range b.N {
				events, signals, _ := waitingHistory(b, n)
				b.ReportMetric(events, "history-events/waiting-request/day")
				b.ReportMetric(signals, "signals/waiting-request/day")
			}
		})
	}
}

// The same, among 50 waiting: what a day of waiting costs a request is
// its own check, not the watcher's checks that found nothing new.
func TestWaitingRequestHistoryPerDayIsItsOwnCheck(t *testing.T) {
	events, signals, told := waitingHistory(t, 50)
	t.Logf("%.1f history events and %.2f signals a day", events, signals)
	require.Positive(t, told, "the watcher looked at the request and told it once, before the days measured")
	require.Zero(t, signals, "nothing new in PKB: the watcher tells the request nothing")
	// The daily check: a timer fired, an activity, their workflow tasks
	// and the next timer (11), and a continue-as-new every few weeks.
	require.LessOrEqual(t, events, 14.0)
	require.Positive(t, events)
}

// otherWaiting begins the workflow ids of the other waiting requests.
var otherWaiting = workflows.RequestWorkflowID("other-")

// waitingHistory returns the history events and the watcher's signals a
// day over days 5 to 9, and every signal the request had.
func waitingHistory(t testing.TB, n int) (eventsPerDay, signalsPerDay float64, told int) {
	r := testrig.New(t)
	ctx := context.Background()
	msg, a := routable(t, r, subject.Cancel)
	start := a.Start.Add(-40 * 24 * time.Hour)
	for i := range n - 1 {
		id := fmt.Sprintf("other-%05d", i)
		require.NoError(t, r.Store.SaveRequest(ctx, store.Request{MessageID: id, WorkflowID: workflows.RequestWorkflowID(id),
			Ref: refs.New(), State: workflows.StateRouted, RequestType: "cancel", AppointmentID: "appt-" + id,
			PatientID: fmt.Sprintf("other-patient-%05d", i/2), SpecialtyCode: "320", ReceivedAt: start.Add(-7 * 24 * time.Hour)}))
		next := start.Add(time.Duration(i) * 4 * time.Hour / time.Duration(n))
		require.NoError(t, r.Store.ScheduleCheck(ctx, id, next, 4*time.Hour, time.Time{}))
	}
	c := &chain{t: t, r: r, others: func(wid string) bool { return strings.HasPrefix(wid, otherWaiting) }}
	// The test clock holds at most about 1,000 callbacks: the watcher runs
	// from day 4.5, before the days measured.
	c.watchBetween(108*time.Hour, 10*time.Minute, 10*24*time.Hour+time.Hour)
	c.r.Set.Appointments.CallsPerHour = 0 // the default budget
	const from, to = 5, 9
	var events, signals [2]int
	c.quietly(from*24*time.Hour, func() { events[0], signals[0] = c.total, c.signals })
	c.quietly(to*24*time.Hour, func() { events[1], signals[1] = c.total, c.signals })
	c.at(10*24*time.Hour, func() { require.NoError(t, r.Sim.Cancel(a.ID)) })
	o, _ := c.run(activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp}, start)
	require.Contains(t, []string{workflows.StateCompleted, workflows.StateTriagedThenCompleted}, o.State)
	return float64(events[1]-events[0]) / (to - from), float64(signals[1]-signals[0]) / (to - from), c.signals
}
