package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/workflows"
)

// keeperEnv is a TokenKeeper under the test clock with a fake grant.
type keeperEnv struct {
	env       *testsuite.TestWorkflowEnvironment
	start     time.Time
	grant     activities.GrantInfo
	refreshes []time.Duration // when, after start
	asks      []activities.AskInput
	askedAt   []time.Duration
	refuse    bool
}

func newKeeper(t *testing.T, g activities.GrantInfo) *keeperEnv {
	var ts testsuite.WorkflowTestSuite
	k := &keeperEnv{env: ts.NewTestWorkflowEnvironment(), grant: g}
	workflows.Register(k.env)
	activities.Register(k.env, activities.Set{})
	k.start = k.env.Now()
	k.env.OnActivity(grantA.LoadGrant, mock.Anything, "c").Return(func(context.Context, string) (activities.GrantInfo, error) {
		return k.grant, nil
	})
	k.env.OnActivity(grantA.MarkGrantNeeded, mock.Anything, "c", mock.Anything).Return(nil).Maybe()
	k.env.OnActivity(grantA.RefreshGrant, mock.Anything, "c").Return(func(context.Context, string) (activities.RefreshResult, error) {
		now := k.env.Now()
		k.refreshes = append(k.refreshes, now.Sub(k.start))
		if k.refuse {
			k.grant.Healthy = false
			return activities.RefreshResult{Refused: true, Reason: "PKB refused the refresh token (invalid_grant)"}, nil
		}
		k.grant.ExpiresAt = now.Add(30 * time.Minute)
		return activities.RefreshResult{ExpiresAt: k.grant.ExpiresAt}, nil
	}).Maybe()
	k.env.OnActivity(grantA.AskForGrant, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AskInput) error {
		k.asks = append(k.asks, in)
		k.askedAt = append(k.askedAt, k.env.Now().Sub(k.start))
		return nil
	}).Maybe()
	return k
}

func (k *keeperEnv) run(until time.Duration) {
	k.env.SetTestTimeout(time.Minute)
	k.env.RegisterDelayedCallback(func() { k.env.CancelWorkflow() }, until)
	k.env.ExecuteWorkflow(workflows.TokenKeeperWorkflow, workflows.KeeperInput{ClientID: "c", Margin: 5 * time.Minute, Reminders: []time.Duration{15 * time.Minute, time.Hour}})
}

func (k *keeperEnv) state() workflows.KeeperStatus {
	v, err := k.env.QueryWorkflow(workflows.QueryTokenKeeper)
	if err != nil {
		return workflows.KeeperStatus{}
	}
	var s workflows.KeeperStatus
	_ = v.Get(&s)
	return s
}

func TestKeeperRefreshesAheadOfExpiry(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	now := ts.NewTestWorkflowEnvironment().Now()
	k := newKeeper(t, activities.GrantInfo{Exists: true, Healthy: true, ExpiresAt: now.Add(30 * time.Minute)})
	k.run(2 * time.Hour)
	require.GreaterOrEqual(t, len(k.refreshes), 4)
	assert.InDelta(t, (25 * time.Minute).Seconds(), k.refreshes[0].Seconds(), 1, "first refresh 5 minutes before expiry")
	assert.InDelta(t, (50 * time.Minute).Seconds(), k.refreshes[1].Seconds(), 1)
	assert.Empty(t, k.asks, "no grant needed")
}

func TestKeeperRefreshesAtOnceWhenAsked(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	now := ts.NewTestWorkflowEnvironment().Now()
	k := newKeeper(t, activities.GrantInfo{Exists: true, Healthy: true, ExpiresAt: now.Add(30 * time.Minute)})
	k.env.RegisterDelayedCallback(func() { k.env.SignalWorkflow(workflows.SignalRefreshNow, nil) }, 3*time.Minute)
	k.run(10 * time.Minute)
	require.Len(t, k.refreshes, 1)
	assert.InDelta(t, (3 * time.Minute).Seconds(), k.refreshes[0].Seconds(), 1, "a 401 seen by an activity refreshes now")
}

func TestKeeperAsksRemindsAndResumes(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	now := ts.NewTestWorkflowEnvironment().Now()
	k := newKeeper(t, activities.GrantInfo{Exists: true, Healthy: true, ExpiresAt: now.Add(30 * time.Minute)})
	k.refuse = true
	var during workflows.KeeperStatus
	k.env.RegisterDelayedCallback(func() { during = k.state() }, 2*time.Hour)
	// A clinician grants access again after three hours.
	k.env.RegisterDelayedCallback(func() {
		k.refuse = false
		k.grant = activities.GrantInfo{Exists: true, Healthy: true, ExpiresAt: k.env.Now().Add(30 * time.Minute)}
		k.env.SignalWorkflow(workflows.SignalGrantReceived, nil)
	}, 3*time.Hour)
	var after workflows.KeeperStatus
	k.env.RegisterDelayedCallback(func() { after = k.state() }, 3*time.Hour+time.Minute)
	k.run(3*time.Hour + 40*time.Minute)

	require.GreaterOrEqual(t, len(k.asks), 4)
	assert.Equal(t, 0, k.asks[0].Reminder)
	assert.Contains(t, k.asks[0].Reason, "invalid_grant")
	assert.InDelta(t, (25 * time.Minute).Seconds(), k.askedAt[0].Seconds(), 1, "asked as soon as the refresh was refused")
	assert.InDelta(t, (40 * time.Minute).Seconds(), k.askedAt[1].Seconds(), 1, "first reminder after 15 minutes")
	assert.InDelta(t, (100 * time.Minute).Seconds(), k.askedAt[2].Seconds(), 1, "then hourly")
	assert.Equal(t, workflows.KeeperNeedsGrant, during.State)
	assert.Contains(t, during.LastError, "invalid_grant")

	last := k.asks[len(k.asks)-1]
	assert.True(t, last.Restored, "the admins hear that access is back")
	assert.Equal(t, workflows.KeeperHealthy, after.State)
	assert.InDelta(t, (3*time.Hour + 25*time.Minute).Seconds(), k.refreshes[len(k.refreshes)-1].Seconds(), 1, "refreshing resumes on its own")
}

func TestKeeperWithNoGrantAsksAtOnce(t *testing.T) {
	k := newKeeper(t, activities.GrantInfo{})
	k.run(10 * time.Minute)
	require.Len(t, k.asks, 1)
	assert.Equal(t, "access was never granted", k.asks[0].Reason)
	assert.Zero(t, k.askedAt[0])
	assert.Empty(t, k.refreshes)
}
