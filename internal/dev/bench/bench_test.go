package bench_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/bench"
	"github.com/rebookhq/rebook/internal/dev/devserver"
	"github.com/rebookhq/rebook/internal/dev/testdb"
)

// The smoke run of `make bench`: a small backlog and a few arrivals
// through the real worker binary; every figure is measured, none is
// asserted against a target (the full run's figures are in
// docs/performance.md).
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server and the worker")
	}
	_ = testdb.ServerURL()
	wd, _ := os.Getwd()
	root, err := devserver.RepoRoot(wd)
	require.NoError(t, err)
	workerBin := filepath.Join(t.TempDir(), "worker")
	build := exec.Command("go", "build", "-o", workerBin, "./worker")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	res, err := bench.Run(context.Background(), bench.Options{Requests: 40, Arrivals: 10, Rate: 10, WorkerBinary: workerBin,
		RepoRoot: root, ServerURL: testdb.ServerURL(), Timeout: 3 * time.Minute, Settle: 2 * time.Second, Log: testWriter{t}})
	require.NoError(t, err)
	t.Logf("%+v", res)
	assert.Positive(t, res.FloorPerSecond)
	assert.Positive(t, res.RebookPerSecond)
	assert.InDelta(t, res.RebookPerSecond/res.FloorPerSecond, res.Ratio, 1e-9)
	assert.GreaterOrEqual(t, res.PKBCallsPerRequest, 2.0, "at least the appointment search and the patient for each request")
	assert.GreaterOrEqual(t, res.SlackCallsPerRequest, 1.0, "a post for each request")
	assert.Positive(t, res.DBRoundTripsPerRequest)
	assert.Greater(t, res.HistoryEventsPerRequest, float64(4*bench.FloorActivities), "a request's history holds at least its activities")
	assert.Positive(t, res.LatencyMedian)
	assert.LessOrEqual(t, res.LatencyMedian, res.LatencyP95)
	assert.LessOrEqual(t, res.LatencyP95, res.LatencyP99)
	assert.Positive(t, res.WorkerPeakRSSMiB)
	assert.Positive(t, res.WorkerWaitingRSSMiB)
	assert.LessOrEqual(t, res.WorkerWaitingRSSMiB, res.WorkerPeakRSSMiB)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
