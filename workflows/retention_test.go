package workflows_test

import (
	"context"
	"fmt"
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
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// whatRebookHeld is what one closed request put in PostgreSQL that names
// or describes its patient.
type whatRebookHeld struct {
	msg                         pkbsim.Message
	patientID, nhs, appointment string
	placer, note, workflowID    string
	trail                       []store.AuditEntry
	closedLongAgo               bool
}

// everything returns every row of every table Rebook owns, as text: what
// anyone reading the database could see.
func everything(t *testing.T, r *testrig.Rig) string {
	t.Helper()
	ctx := context.Background()
	rows, err := r.Store.Pool().Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	require.Contains(t, tables, "requests")
	require.Contains(t, tables, "audit_log")
	var all strings.Builder
	for _, table := range tables {
		rows, err := r.Store.Pool().Query(ctx, fmt.Sprintf(`SELECT t::text FROM public.%q t`, table))
		require.NoError(t, err)
		for rows.Next() {
			var row string
			require.NoError(t, rows.Scan(&row))
			all.WriteString(row + "\n")
		}
		require.NoError(t, rows.Err())
	}
	return all.String()
}

// A retention run removes what names or describes the patient from
// requests closed longer ago than the period, through the real workflow
// and SQL, and leaves the audit trail of who did what and when. The
// requests are run for real, and staff close each with a note quoting the
// patient's message and NHS number: the worst free text PostgreSQL can
// hold.
func TestRetentionRedactsOldClosedRequestsAndKeepsTheirAuditTrail(t *testing.T) {
	r := testrig.New(t)
	r.Set.Retention = &activities.RetentionActivities{Store: r.Store, Days: 90}
	ctx := context.Background()
	nhs := map[string]string{}
	for _, p := range r.DS.Patients {
		nhs[p.ID] = p.NHSNumber
	}
	appts := map[string]pkbsim.Appointment{}
	for _, a := range r.DS.Appointments {
		appts[a.ID] = a
	}

	var held []*whatRebookHeld
	for _, e := range r.DS.Expect {
		if e.Kind != pkbsim.KindRoutable || len(held) == 3 {
			continue
		}
		msg := r.Message(e.MessageID)
		require.NotEmpty(t, nhs[msg.PatientID])
		h := &whatRebookHeld{msg: msg, patientID: msg.PatientID, nhs: nhs[msg.PatientID], appointment: e.AppointmentID,
			placer: appts[e.AppointmentID].PlacerID, closedLongAgo: len(held) < 2}
		h.note = fmt.Sprintf("patient %s wrote %q", h.nhs, msg.Content)
		held = append(held, h)

		env := realEnv(r)
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.RequestWorkflowID(msg.ID)})
		env.RegisterDelayedCallback(func() {
			env.UpdateWorkflow(workflows.UpdateStaffAction, "cant-"+msg.ID, &testsuite.TestUpdateCallback{
				OnReject: func(err error) { t.Errorf("refused: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
			}, workflows.StaffAction{Action: workflows.ActionCantAction, User: "U1", Note: h.note})
		}, time.Hour)
		env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, activities.MessageRef{ID: msg.ID, Timestamp: msg.Timestamp})
		require.True(t, env.IsWorkflowCompleted())
		require.NoError(t, env.GetWorkflowError())

		row, err := r.Store.Request(ctx, msg.ID)
		require.NoError(t, err)
		require.NotNil(t, row.ClosedAt)
		require.Equal(t, h.patientID, row.PatientID, "the request held its patient's id while open")
		require.Contains(t, row.CloseNote, h.nhs, "the note quoting the patient is held")
		h.workflowID = row.WorkflowID
		if h.closedLongAgo {
			_, err := r.Store.Pool().Exec(ctx, `UPDATE requests SET closed_at = now() - interval '91 days' WHERE message_id = $1`, msg.ID)
			require.NoError(t, err)
		}
		h.trail, err = r.Store.AuditTrail(ctx, h.workflowID)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(h.trail), 2, "routed and closed, at least")
	}
	require.Len(t, held, 3)
	before := everything(t, r)
	for _, h := range held {
		require.True(t, strings.Contains(before, h.nhs), "before the run, the database holds the NHS number in a close note")
		require.True(t, strings.Contains(before, h.appointment))
	}

	run := func() workflows.RedactResult {
		var res workflows.RedactResult
		runScheduled(t, r, workflows.RedactClosedRequestsWorkflow, &res)
		return res
	}
	assert.Equal(t, 2, run().Redacted)

	after := everything(t, r)
	for _, h := range held {
		row, err := r.Store.Request(ctx, h.msg.ID)
		require.NoError(t, err)
		trail, err := r.Store.AuditTrail(ctx, h.workflowID)
		require.NoError(t, err)
		if !h.closedLongAgo {
			assert.True(t, strings.Contains(after, h.nhs), "a request closed within the period keeps its note")
			assert.Equal(t, h.patientID, row.PatientID)
			assert.Nil(t, row.RedactedAt)
			assert.Equal(t, h.trail, trail, "and its audit trail as it was")
			continue
		}
		for what, v := range map[string]string{"NHS number": h.nhs, "message text": h.msg.Content, "PKB patient id": h.patientID,
			"appointment id": h.appointment, "placer id": h.placer, "close note": h.note} {
			assert.False(t, strings.Contains(after, v), "the %s of %s is still in the database after the run", what, h.msg.ID)
		}
		assert.NotNil(t, row.RedactedAt)
		assert.Nil(t, row.AppointmentStart)
		assert.Equal(t, h.msg.ID, row.MessageID)
		assert.NotEmpty(t, row.Team, "the row keeps what the reports count")
		assert.NotNil(t, row.ClosedAt)

		// The trail keeps each entry's who, what and when, and says when
		// the details went.
		require.Len(t, trail, len(h.trail)+1)
		for i, e := range h.trail {
			assert.Equal(t, e.Actor, trail[i].Actor)
			assert.Equal(t, e.Action, trail[i].Action)
			assert.Equal(t, e.At, trail[i].At)
			assert.Equal(t, e.Detail["team"], trail[i].Detail["team"])
		}
		last := trail[len(trail)-1]
		assert.Equal(t, store.ActionRedacted, last.Action)
		assert.Equal(t, "90", last.Detail["after_days"])
	}
	assert.Zero(t, run().Redacted, "run again, nothing is redacted twice")
}
