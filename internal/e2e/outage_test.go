package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/pkbsim"
)

// Issue 22, case 9: PKB refuses every call (HTTP 403: the grant looks
// withdrawn) for longer than the 45 s that once capped intake's local
// reads, from the moment a batch of requests was read. The requests pause
// while the admins are asked for the grant, and are routed once PKB
// answers again: none ends Failed.
func TestHazardPKBOutageDuringIntakePausesRequests(t *testing.T) {
	const n = 4
	s := start(t, n)
	ctx := context.Background()
	// Slow, so the batch is still in intake when the refusals begin: each
	// read outlasts the 5 s a read may take inside the workflow task.
	s.sim.SetFaults(pkbsim.Faults{LatencyMS: 8000})
	require.NoError(t, s.startSchedules(ctx))
	waitFor(t, "the batch's request workflows started", limit(time.Minute), func() bool {
		return s.count(t, "WorkflowType = 'AppointmentRequest'") >= n
	})
	s.sim.SetFaults(pkbsim.Faults{ErrorRate: 1, ErrorStatus: 403})
	refusedFrom := time.Now()
	waitFor(t, "the admins asked for the grant", limit(2*time.Minute), func() bool { return len(s.slack.Roots(admin)) > 0 })
	// The outage outlasts the old cap; the requests meanwhile stay open.
	for time.Since(refusedFrom) < 55*time.Second {
		assert.Zero(t, s.count(t, "WorkflowType = 'AppointmentRequest' AND ExecutionStatus = 'Failed'"), "a request failed during the outage")
		time.Sleep(5 * time.Second)
	}
	assert.Empty(t, s.cards(), "nothing routed while PKB refused every call")
	s.sim.SetFaults(pkbsim.Faults{})
	waitFor(t, "every request routed once PKB answered again", limit(4*time.Minute), func() bool { return len(s.cards()) >= n })
	assert.Zero(t, s.count(t, "WorkflowType = 'AppointmentRequest' AND ExecutionStatus = 'Failed'"))
	s.closeAll(t, n, limit(3*time.Minute))
}
