package activities_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/testrig"
	"github.com/rebookhq/rebook/internal/refs"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// BenchmarkWaitingDay measures the cost of requests that wait for the PAS,
// at 1,000 and 10,000 waiting (two per patient), over two simulated days
// of the watcher's clock in steady state: each request already checked
// every 4 hours, its next check somewhere in the coming 4 hours, nothing
// changing in PKB. The watcher runs every 2 minutes, in PKB's documented
// mode (one search per patient), with the default budget; each request's
// own daily safety check (CheckAppointment) runs once a day at its own
// time. It reports PKB calls per waiting request per hour, and the
// watcher's signals per waiting request on each day (each is history).
//
//	go test -run '^$' -bench WaitingDay -benchtime 1x ./activities
func BenchmarkWaitingDay(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("waiting=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				r := testrig.New(b)
				b.StartTimer()
				d := waitDays(b, r, n, 2)
				b.StopTimer()
				b.ReportMetric(float64(d.calls)/float64(n)/48, "PKB-calls/waiting-request/hour")
				b.ReportMetric(float64(d.calls)/48, "PKB-calls/hour")
				b.ReportMetric(float64(d.signals[0])/float64(n), "signals/waiting-request/day1")
				b.ReportMetric(float64(d.signals[1])/float64(n), "signals/waiting-request/day2")
			}
		})
	}
}

type waited struct {
	calls   int64    // PKB Appointment calls (searches and reads)
	signals [2]int64 // the watcher's signals on each day
}

// waitDays puts n matched requests (two per patient) in the read model in
// steady state and runs the watcher every 2 minutes, and each request's
// own daily check, for days of the watcher's clock.
func waitDays(t testing.TB, r *testrig.Rig, n, days int) waited {
	ctx := context.Background()
	now := time.Now()
	ins := make([]activities.CheckInput, n)
	var ds pkbsim.Dataset
	for i := range n {
		id := fmt.Sprintf("wait-%05d", i)
		if i%2 == 0 {
			ds.Patients = append(ds.Patients, pkbsim.Patient{ID: fmt.Sprintf("patient-%05d", i/2)})
		}
		start := now.Add(30*24*time.Hour + time.Duration(i)*time.Hour).Truncate(time.Minute)
		ds.Appointments = append(ds.Appointments, pkbsim.Appointment{ID: "appt-" + id, PatientID: fmt.Sprintf("patient-%05d", i/2),
			Status: "booked", Start: start, End: start.Add(30 * time.Minute), SpecialtyCode: "320", Specialty: "Cardiology",
			Created: now.Add(-10 * 24 * time.Hour), LastUpdated: now.Add(-10 * 24 * time.Hour)})
	}
	r.Sim.Load(ds)
	for i := range n {
		id := fmt.Sprintf("wait-%05d", i)
		patient := fmt.Sprintf("patient-%05d", i/2)
		require.NoError(t, r.Store.SaveRequest(ctx, store.Request{MessageID: id, WorkflowID: workflows.RequestWorkflowID(id),
			Ref: refs.New(), State: workflows.StateRouted, RequestType: "cancel", AppointmentID: "appt-" + id,
			PatientID: patient, SpecialtyCode: "320", ReceivedAt: now.Add(-7 * 24 * time.Hour)}))
		next := now.Add(time.Duration(i) * 4 * time.Hour / time.Duration(n))
		require.NoError(t, r.Store.ScheduleCheck(ctx, id, next, 4*time.Hour, time.Time{}))
		ins[i] = activities.CheckInput{AppointmentID: "appt-" + id, PatientID: patient, SpecialtyCode: "320", RequestType: "cancel"}
	}
	clock := now
	r.Set.Appointments.Now = func() time.Time { return clock }
	counted := func() int64 {
		c := r.Sim.Counters()
		return c["GET /fhir/Appointment"] + c["GET /fhir/Appointment/{id}"]
	}
	before := counted()
	var out waited
	const step = 2 * time.Minute
	steps := int(24 * time.Hour / step)
	for day := range days {
		told := int64(0)
		for s := range steps {
			clock = clock.Add(step)
			res, err := r.Set.Appointments.WatchAppointments(ctx)
			require.NoError(t, err)
			told += int64(res.Signalled)
			// The requests' own checks, each once a day, spread evenly.
			for i := s * n / steps; i < (s+1)*n/steps; i++ {
				_, err := r.Set.Appointments.CheckAppointment(ctx, ins[i])
				require.NoError(t, err)
			}
		}
		if day < len(out.signals) {
			out.signals[day] = told
		}
	}
	out.calls = counted() - before
	return out
}

// The watcher never spends more than its budget in an hour, however many
// requests are due, and spends most of it when they are.
func TestWatcherNeverExceedsItsBudget(t *testing.T) {
	r := testrig.New(t)
	r.Set.Appointments.CallsPerHour = 60
	ctx := context.Background()
	now := time.Now()
	for i := range 300 {
		id := fmt.Sprintf("bench-%05d", i)
		require.NoError(t, r.Store.SaveRequest(ctx, store.Request{MessageID: id, WorkflowID: workflows.RequestWorkflowID(id),
			Ref: refs.New(), State: workflows.StateRouted, RequestType: "cancel", AppointmentID: "appt-" + id,
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
	calls := r.Sim.Counters()["GET /fhir/Appointment"] - before
	require.LessOrEqual(t, calls, int64(60))
	require.GreaterOrEqual(t, calls, int64(50))
}
