package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/testrig"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// A retention period left at zero (a configuration built in code, say)
// would make every closed request due at once: the activity refuses, for
// good, and redacts nothing.
func TestRedactClosedRefusesAnUnsetPeriod(t *testing.T) {
	r := testrig.New(t)
	ctx := context.Background()
	closed := time.Now().Add(-time.Hour)
	require.NoError(t, r.Store.SaveRequest(ctx, store.Request{MessageID: "m1", WorkflowID: "wf-m1", Ref: "RB-M1", State: workflows.StateCompleted,
		PatientID: "patient-1", ReceivedAt: closed.Add(-time.Hour), ClosedAt: &closed}))

	_, err := (&activities.RetentionActivities{Store: r.Store}).RedactClosed(ctx)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	assert.True(t, appErr.NonRetryable())
	row, err := r.Store.Request(ctx, "m1")
	require.NoError(t, err)
	assert.Equal(t, "patient-1", row.PatientID)

	res, err := (&activities.RetentionActivities{Store: r.Store, Days: 1}).RedactClosed(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Redacted, "closed an hour ago: within a day's period")
}
