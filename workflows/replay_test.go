package workflows_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/internal/replay"
	"github.com/rebookhq/rebook/workflows"
)

// Case 10: histories recorded by earlier releases (testdata/histories,
// one directory per release and run: requests routed and completed,
// triaged, closed by staff, escalated past their SLA, closed by the PAS
// feed, waiting through a lost and restored grant, and the TokenKeeper,
// poller and watcher) replay on this code. A change to workflow logic that
// is not behind workflow.GetVersion fails here with a nondeterminism
// error, as it would for every request in flight when the release is
// deployed. `make record-histories` records a new set.
func TestHazardRecordedHistoriesReplay(t *testing.T) {
	results, err := replay.Dir(filepath.Join("testdata", "histories"), nil)
	require.NoError(t, err)
	require.NotEmpty(t, results)
	types := map[string]int{}
	for _, r := range results {
		types[r.Type]++
		assert.NoError(t, r.Err, "%s (%s) does not replay", r.Source, r.Type)
	}
	for _, wt := range []string{workflows.AppointmentRequestWorkflow, workflows.TokenKeeperWorkflow} {
		assert.Positive(t, types[wt], "no recorded %s history", wt)
	}
	t.Logf("%d histories replayed: %v", len(results), types)
}

// The check catches a change that is not versioned: the same histories on
// an AppointmentRequest that runs a new activity first fail, each
// named.
func TestReplayNamesANonDeterministicChange(t *testing.T) {
	changed := replay.Replace(workflows.AppointmentRequestWorkflow, func(ctx workflow.Context, ref any, carried any) (workflows.Outcome, error) {
		// Unversioned: a new first activity.
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		if err := workflow.ExecuteActivity(actx, "check-something-first").Get(ctx, nil); err != nil {
			return workflows.Outcome{}, err
		}
		return workflows.Outcome{}, nil
	})
	results, err := replay.Dir(filepath.Join("testdata", "histories"), changed)
	require.NoError(t, err)
	failed := 0
	for _, r := range results {
		if r.Type != workflows.AppointmentRequestWorkflow {
			assert.NoError(t, r.Err, r.Source)
			continue
		}
		require.Error(t, r.Err, "%s replayed on a changed workflow", r.Source)
		assert.True(t, replay.Nondeterministic(r.Err), r.Err.Error())
		failed++
	}
	assert.Positive(t, failed)
}
