package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/testrig"
	"github.com/rebookhq/rebook/workflows"
)

// The hazard tests run a workflow in Temporal's test environment with the
// real activities against the PKB simulator, PostgreSQL and the fake
// Slack: the path a real run takes, on the test clock. `go test -run
// Hazard ./...` runs them all; docs/clinical-safety.md cites them.

func realEnv(r *testrig.Rig) *testsuite.TestWorkflowEnvironment {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	workflows.Register(env)
	activities.Register(env, r.Set)
	return env
}

// Case 2: a message PKB stores late, with a timestamp the cursor has
// passed or equal to the last one read, is still started.
func TestHazardLateMessageBehindTheCursorIsStarted(t *testing.T) {
	r := testrig.New(t)
	r.Set.Poll.Overlap = 10 * time.Minute
	poll := func() workflows.PollResult {
		env := realEnv(r)
		env.ExecuteWorkflow(workflows.PollMessagesWorkflow)
		require.True(t, env.IsWorkflowCompleted())
		require.NoError(t, env.GetWorkflowError())
		var res workflows.PollResult
		require.NoError(t, env.GetWorkflowResult(&res))
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
	var status workflows.RequestStatus
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryState)
		require.NoError(t, err)
		require.NoError(t, v.Get(&status))
		env.CancelWorkflow()
	}, time.Hour)
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
