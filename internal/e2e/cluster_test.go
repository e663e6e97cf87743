package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/codec"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/devserver"
	"github.com/rebookhq/rebook/internal/replay"
	"github.com/rebookhq/rebook/workflows"
)

// clusterEnv names the frontend of a running cluster (`make cluster`);
// with it set, the end-to-end stack runs there, each test in a namespace
// of its own, instead of on a dev server of its own.
const clusterEnv = "REBOOK_E2E_TEMPORAL"

// clusterNamespace is a fresh namespace, with Rebook's search attributes,
// on the cluster clusterEnv names, and that cluster's address; empty when
// clusterEnv is unset.
func clusterNamespace(t *testing.T, ctx context.Context) (string, string) {
	addr := os.Getenv(clusterEnv)
	if addr == "" {
		return "", ""
	}
	ns, err := devserver.FreshNamespace(ctx, addr, "e2e-")
	require.NoError(t, err)
	return addr, ns
}

// restartService kills one of the cluster's services and starts it again
// (tools/cluster.sh restart), as a node failing would.
func restartService(t *testing.T, service string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(repoRoot(t), "tools/cluster.sh"), "restart", service).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// TestClusterSurvivesServiceRestarts runs requests on the production-shaped
// cluster (`make cluster-test`) with three workers, and kills and restarts
// each Temporal service in turn (history, matching, frontend, worker) while
// they arrive and wait: every request completes once, with one card.
func TestClusterSurvivesServiceRestarts(t *testing.T) {
	if os.Getenv(clusterEnv) == "" {
		t.Skip("needs a running cluster: make cluster-test")
	}
	n := 30
	s := start(t, n)
	ctx := context.Background()
	for range 2 {
		w, err := app.Worker(s.cfg, s.st, s.tc, app.WorkerOptions{Metrics: s.workerMetrics})
		require.NoError(t, err)
		require.NoError(t, w.Start())
		t.Cleanup(w.Stop)
	}
	require.NoError(t, s.startSchedules(ctx))
	waitFor(t, "every request routed", limit(4*time.Minute), func() bool { return len(s.cards()) >= n })
	// The PAS starts acting on the requests, and each service is killed
	// and started again while they close: timers, signals from the
	// watcher, staff presses and completions meet every fault.
	s.sim.SetAutoPAS(time.Second)
	for _, svc := range []string{"history", "matching", "frontend", "worker"} {
		restartService(t, svc)
		waitFor(t, "the cluster answering after "+svc+" restarted", limit(2*time.Minute), func() bool {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := s.tc.DescribeTaskQueue(ctx, workflows.TaskQueue, enums.TASK_QUEUE_TYPE_WORKFLOW)
			return err == nil
		})
	}
	s.closeAll(t, n, limit(4*time.Minute))
}

// A self-hosted cluster's first start has no namespace for Rebook:
// `starter schedule --create-namespace` makes it, with the retention
// asked for, and changes nothing when it exists.
func TestEnsureNamespaceCreatesItOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	ctx := context.Background()
	srv := devServer(t, devserver.Options{})
	c, err := client.Dial(client.Options{HostPort: srv.Address})
	require.NoError(t, err)
	defer c.Close()
	made, err := app.EnsureNamespace(ctx, c, "rebook-prod", 72*time.Hour)
	require.NoError(t, err)
	require.True(t, made)
	made, err = app.EnsureNamespace(ctx, c, "rebook-prod", 24*time.Hour)
	require.NoError(t, err)
	require.False(t, made, "an existing namespace is left as it is")
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "rebook-prod"})
	require.NoError(t, err)
	require.Equal(t, 72*time.Hour, ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration())
}

// TestWorkerVersioningCarriesWaitingRequests deploys a new build as a trust
// would, on the cluster: requests are routed and wait on build A (Worker
// Versioning, REBOOK_BUILD_ID); `starter replay`'s check passes on the new
// build; build B's workers start beside A's, B is ramped, then made
// current, and A's workers are retired; every request, those waiting
// across the deploy included, completes once, on build B.
func TestWorkerVersioningCarriesWaitingRequests(t *testing.T) {
	if os.Getenv(clusterEnv) == "" {
		t.Skip("needs a running cluster: make cluster-test")
	}
	n := 12
	s := start(t, n, func(c *config.Config) { c.BuildID = "build-a" })
	ctx := context.Background()
	require.NoError(t, app.SetCurrentBuild(ctx, s.tc, "build-a"))
	require.NoError(t, s.startSchedules(ctx))
	waitFor(t, "every request routed and waiting on build A", limit(3*time.Minute), func() bool { return len(s.cards()) >= n })

	// Before the ramp: the new build replays every live history.
	dc, err := codec.DataConverter(s.cfg.EncryptionKey)
	require.NoError(t, err)
	results, err := replay.Live(ctx, s.tc, dc, replay.Options{Namespace: s.cfg.TemporalNamespace})
	require.NoError(t, err)
	require.NotEmpty(t, results)
	for _, r := range results {
		require.NoError(t, r.Err, "%s does not replay on the new build", r.WorkflowID)
	}

	cfgB := s.cfg
	cfgB.BuildID = "build-b"
	b, err := app.Worker(cfgB, s.st, s.tc, app.WorkerOptions{Metrics: s.workerMetrics})
	require.NoError(t, err)
	require.NoError(t, b.Start())
	require.NoError(t, app.RampBuild(ctx, s.tc, "build-b", 50))
	require.NoError(t, app.SetCurrentBuild(ctx, s.tc, "build-b"))
	s.worker.Stop() // build A retired; the stack's cleanup stops B
	s.worker = b

	s.closeAll(t, n, limit(4*time.Minute))
	rows, err := s.st.AllRequests(ctx)
	require.NoError(t, err)
	require.Len(t, rows, n)
	for _, row := range rows {
		d, err := s.tc.DescribeWorkflowExecution(ctx, row.WorkflowID, "")
		require.NoError(t, err)
		v := d.GetWorkflowExecutionInfo().GetVersioningInfo()
		require.NotNil(t, v, row.Ref)
		require.Equal(t, "build-b", v.GetDeploymentVersion().GetBuildId(), "%s finished on the new build", row.Ref)
	}
}
