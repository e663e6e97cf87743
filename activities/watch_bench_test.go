package activities_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/testrig"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// BenchmarkWatcherPKBCallsPerWaitingRequest runs the watcher, in PKB's
// documented mode (one search per patient), every 2 minutes for an hour of
// its clock over 1,000 and 10,000 waiting requests, with the default
// budget, and reports the PKB calls it made per waiting request per hour.
// The request's own daily safety check adds 1/24 (0.042).
//
//	go test -run '^$' -bench WatcherPKBCalls -benchtime 1x ./activities
func BenchmarkWatcherPKBCallsPerWaitingRequest(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("waiting=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				r := testrig.New(b)
				b.StartTimer()
				calls := watchAnHour(b, r, n)
				b.StopTimer()
				b.ReportMetric(float64(calls)/float64(n), "PKB-calls/waiting-request/hour")
				b.ReportMetric(float64(calls), "PKB-calls/hour")
			}
		})
	}
}

// watchAnHour puts n matched requests (two per patient) in the read
// model, due over the coming hour, runs the watcher every 2 minutes for an
// hour of its clock, and returns the PKB calls it made.
func watchAnHour(t testing.TB, r *testrig.Rig, n int) int64 {
	ctx := context.Background()
	now := time.Now()
	for i := range n {
		id := fmt.Sprintf("bench-%05d", i)
		require.NoError(t, r.Store.SaveRequest(ctx, store.Request{MessageID: id, WorkflowID: workflows.RequestWorkflowID(id),
			Ref: activities.Ref(id), State: workflows.StateRouted, RequestType: "cancel", AppointmentID: "appt-" + id,
			PatientID: fmt.Sprintf("patient-%05d", i/2), SpecialtyCode: "320", ReceivedAt: now}))
		first := now.Add(-time.Duration(i%60) * time.Minute).Add(5 * time.Minute)
		require.NoError(t, r.Store.ScheduleCheck(ctx, id, first, 5*time.Minute, now.Add(48*time.Hour)))
	}
	clock := now
	r.Set.Appointments.Now = func() time.Time { return clock }
	before := r.Sim.Counters()["GET /fhir/Appointment"]
	for range 30 {
		clock = clock.Add(2 * time.Minute)
		_, err := r.Set.Appointments.WatchAppointments(ctx)
		require.NoError(t, err)
	}
	return r.Sim.Counters()["GET /fhir/Appointment"] - before
}

// The watcher never spends more than its budget in an hour, however many
// requests are due, and spends most of it when they are.
func TestWatcherNeverExceedsItsBudget(t *testing.T) {
	r := testrig.New(t)
	r.Set.Appointments.CallsPerHour = 60
	calls := watchAnHour(t, r, 300)
	require.LessOrEqual(t, calls, int64(60))
	require.GreaterOrEqual(t, calls, int64(50))
}
