package reprocess

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

func TestFilterQuery(t *testing.T) {
	q, err := Filter{}.Query()
	require.NoError(t, err)
	assert.Equal(t, "WorkflowType = 'AppointmentRequest' AND (ExecutionStatus = 'Failed')", q)

	q, err = Filter{Statuses: []string{"failed", "TERMINATED"}, From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		To: time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC), Type: "cancel", Specialty: "Ear, nose & throat's"}.Query()
	require.NoError(t, err)
	assert.Equal(t, "WorkflowType = 'AppointmentRequest' AND (ExecutionStatus = 'Failed' OR ExecutionStatus = 'Terminated')"+
		" AND StartTime >= '2026-11-01T00:00:00Z' AND StartTime < '2026-11-08T00:00:00Z'"+
		" AND RequestType = 'cancel' AND Specialty = 'Ear, nose & throat\\'s'", q)

	_, err = Filter{Statuses: []string{"broken"}}.Query()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Failed, Terminated, TimedOut, Canceled, Running")
}

// A run terminated while it waited resets to its last completed workflow
// task, and says why it closed.
func TestLastGoodPointOfATerminatedRun(t *testing.T) {
	files, err := filepath.Glob("../../workflows/testdata/histories/*/*/AppointmentRequest-terminated-*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	f, err := os.Open(files[0])
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	require.NoError(t, err)
	failure, at, step := lastGoodPoint(h)
	assert.Contains(t, failure, "terminated: test:")
	assert.Equal(t, "the last workflow task", step)
	var last int64
	for _, e := range h.GetEvents() {
		if e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			last = e.GetEventId()
		}
	}
	assert.Equal(t, last, at)
	assert.Positive(t, at)
}

func TestRequestIDIsStablePerRunAndMode(t *testing.T) {
	c := Candidate{WorkflowID: "w", RunID: "r1"}
	assert.Equal(t, requestID(c, Reset), requestID(c, Reset))
	assert.NotEqual(t, requestID(c, Reset), requestID(c, Restart))
	assert.NotEqual(t, requestID(c, Reset), requestID(Candidate{WorkflowID: "w", RunID: "r2"}, Reset))
}
