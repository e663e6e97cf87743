package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/rebookhq/rebook/internal/wfclient"
	"github.com/rebookhq/rebook/workflows"
)

// Finding 15: anyone with write access to Temporal but without Rebook's
// key (the CLI, the Web UI, a plain SDK client) cannot steer a request:
// the workers refuse unsealed payloads. A plain "Can't action" update is
// rejected and closes nothing; a plain "the appointment was cancelled"
// signal is dropped; the same update sealed, as Rebook sends it, works.
func TestSecurityPlainPayloadsSteerNothing(t *testing.T) {
	r := routedForFeed(t, 4)
	ctx := context.Background()
	cancels := r.requestsOf(subject.Cancel)
	require.NotEmpty(t, cancels)
	a := cancels[0]
	id := r.wid(a)

	plain, err := client.Dial(client.Options{HostPort: r.cfg.TemporalAddress, Namespace: r.cfg.TemporalNamespace})
	require.NoError(t, err)
	defer plain.Close()

	h, err := plain.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.UpdateStaffAction,
		Args:         []any{workflows.StaffAction{Action: workflows.ActionCantAction, User: "UATTACKER", Note: "closed in clear"}},
		WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	require.Error(t, err, "a plain update is refused")
	assert.Contains(t, err.Error(), "not sealed")

	require.NoError(t, plain.SignalWorkflow(ctx, id, "", workflows.SignalAppointmentChanged,
		activities.AppointmentUpdate{AppointmentID: a.ID, Status: "cancelled", Start: a.Start, Via: activities.ViaFeed, PASTime: time.Now()}))

	// A sealed update after the plain signal: once it has run, the
	// signal before it in the history has been dealt with.
	msg, err := wfclient.Client{Temporal: r.tc}.StaffAction(ctx, id, workflows.StaffAction{Action: workflows.ActionClaim, User: "USAM"})
	require.NoError(t, err, "Rebook's own, sealed, update works")
	assert.NotEmpty(t, msg)
	assert.False(t, r.closed(a), "the plain signal closed nothing")
	mid, _ := workflows.MessageIDFromWorkflowID(id)
	row, err := r.st.Request(ctx, mid)
	require.NoError(t, err)
	assert.Equal(t, workflows.StateClaimed, row.State)
	trail, err := r.st.AuditTrail(ctx, id)
	require.NoError(t, err)
	for _, e := range trail {
		assert.NotEqual(t, "UATTACKER", e.Actor)
	}
}
