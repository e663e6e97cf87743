package e2e

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// breakActivity makes one activity of a worker fail without retry, after
// running it when run says so: a bad build of that activity.
type breakActivity struct {
	interceptor.WorkerInterceptorBase
	name string
	run  func() bool
}

func (b *breakActivity) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &brokenIn{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, b: b}
}

type brokenIn struct {
	interceptor.ActivityInboundInterceptorBase
	b *breakActivity
}

func (i *brokenIn) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if activity.GetInfo(ctx).ActivityType.Name != i.b.name {
		return i.Next.ExecuteActivity(ctx, in)
	}
	if i.b.run() {
		if _, err := i.Next.ExecuteActivity(ctx, in); err != nil {
			return nil, err
		}
	}
	return nil, temporal.NewNonRetryableApplicationError(i.b.name+" broke in this build", "BadBuild", nil)
}

// reprocessCLI builds `starter` and returns a runner of `starter
// reprocess` against the stack, which fails the test when it fails.
func (s *stack) reprocessCLI(t *testing.T) func(args ...string) string {
	run := s.reprocessCmd(t)
	return func(args ...string) string {
		out, err := run(args...)
		require.NoError(t, err, "starter reprocess %v: %s", args, out)
		return out
	}
}

// reprocessCmd is reprocessCLI that returns the command's error.
func (s *stack) reprocessCmd(t *testing.T) func(args ...string) (string, error) {
	bin := filepath.Join(t.TempDir(), "starter")
	build := exec.Command("go", "build", "-o", bin, "./starter")
	build.Dir = repoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	return func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"reprocess"}, args...)...)
		cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+s.cfg.TemporalAddress, "TEMPORAL_NAMESPACE=default",
			"REBOOK_ENCRYPTION_KEY="+base64.StdEncoding.EncodeToString(s.key), "DATABASE_URL="+s.dbURL)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// Issue 22, case 7: a request whose workflow an operator terminated after
// the read model had closed it is not reopened by `starter reprocess
// --mode restart`: it is skipped and the summary says why. --reopen with
// --mode restart is refused unless the request is named, and then it is
// done and audited.
func TestHazardReprocessNeverReopensAClosedRequest(t *testing.T) {
	s := start(t, 2)
	ctx := context.Background()
	run := s.reprocessCmd(t)
	require.NoError(t, s.startSchedules(ctx))
	waitFor(t, "both routed", limit(2*time.Minute), func() bool { return len(s.cards()) >= 2 })
	closedID := s.ds.Expect[0].MessageID
	wid := workflows.RequestWorkflowID(closedID)
	// The request closed in the read model; its workflow then stuck (say,
	// on a card edit) and an operator terminated it.
	require.NoError(t, s.st.ChangeState(ctx, store.StateChange{MessageID: closedID, State: workflows.StateCompleted, Closed: true, CloseNote: "PKB shows the appointment cancelled"},
		store.AuditEntry{Actor: "rebook", Action: workflows.StateCompleted, Subject: wid}))
	require.NoError(t, s.tc.TerminateWorkflow(ctx, wid, "", "stuck on a card edit"))

	out, err := run("--status", "Terminated", "--mode", "restart")
	require.NoError(t, err, out)
	assert.Contains(t, out, "1 selected: 0 reset, 0 restarted, 1 skipped", out)
	assert.Contains(t, out, "1 skipped because the read model shows the request closed", out)
	row, err := s.st.Request(ctx, closedID)
	require.NoError(t, err)
	assert.NotNil(t, row.ClosedAt, "still closed")
	assert.Zero(t, s.count(t, "WorkflowId = '"+wid+"' AND ExecutionStatus = 'Running'"), "no new run")

	out, err = run("--status", "Terminated", "--mode", "restart", "--reopen")
	require.Error(t, err, "reopening by restart needs the requests named")
	assert.Contains(t, out, "--ids")
	out, err = run("--status", "Terminated", "--mode", "restart", "--reopen", "--ids", wid)
	require.NoError(t, err, out)
	assert.Contains(t, out, "1 restarted", out)
	assert.Contains(t, out, "1 closed request(s) reopened on purpose", out)
	trail, err := s.st.AuditTrail(ctx, wid)
	require.NoError(t, err)
	reopened := false
	for _, e := range trail {
		reopened = reopened || e.Action == "reopened" && e.Actor == "starter reprocess" && e.Detail["was"] == workflows.StateCompleted
	}
	assert.True(t, reopened, "the reopening is audited")

	// Issue 22, case 11: a waiting request reset by an operator is told
	// what PKB shows afresh: the reset clears what the watcher last told
	// it.
	waiting := s.ds.Expect[1].MessageID
	wwid := workflows.RequestWorkflowID(waiting)
	require.NoError(t, s.st.SetSeenDigest(ctx, waiting, "told-before-the-reset"))
	require.NoError(t, s.tc.TerminateWorkflow(ctx, wwid, "", "an operator's test"))
	out, err = run("--status", "Terminated", "--mode", "reset", "--ids", wwid)
	require.NoError(t, err, out)
	assert.Contains(t, out, "1 reset", out)
	var digest string
	require.NoError(t, s.st.Pool().QueryRow(ctx, `SELECT seen_digest FROM requests WHERE message_id = $1`, waiting).Scan(&digest))
	assert.Empty(t, digest, "the reset cleared what the watcher had told the request")
}

// A bad build fails every request at route-to-team, half of them after
// the card was posted (a partial success). After the fix is deployed,
// `starter reprocess --dry-run` lists each failed request; two are
// restarted from their message and the real run resets the rest to the
// step that failed; they complete with one card each, and running it
// again changes nothing.
func TestReprocessFailedRequests(t *testing.T) {
	const n = 8
	s := start(t, n)
	ctx := context.Background()
	cli := s.reprocessCLI(t)

	// The bad build.
	s.worker.Stop()
	set, err := app.Activities(s.cfg, s.st, s.tc, app.WorkerOptions{})
	require.NoError(t, err)
	var calls atomic.Int32
	bad := worker.New(s.tc, workflows.TaskQueue, worker.Options{Interceptors: []interceptor.WorkerInterceptor{
		&breakActivity{name: "route-to-team", run: func() bool { return calls.Add(1)%2 == 0 }}}})
	workflows.Register(bad)
	activities.Register(bad, set)
	require.NoError(t, bad.Start())
	require.NoError(t, s.startSchedules(ctx))
	failedQuery := "WorkflowType = 'AppointmentRequest' AND ExecutionStatus = 'Failed'"
	waitFor(t, "every request failed by the bad build", limit(2*time.Minute), func() bool {
		if os.Getenv("E2E_DEBUG") != "" {
			t.Logf("failed %d running %d all %d calls %d", s.count(t, failedQuery), s.count(t, "ExecutionStatus = 'Running'"), s.count(t, "WorkflowType = 'AppointmentRequest'"), calls.Load())
		}
		return s.count(t, failedQuery) >= n
	})
	bad.Stop()
	posted := len(s.cards())
	require.Positive(t, posted, "some cards were posted before their workflow failed")
	require.Less(t, posted, n)

	// The fix is deployed.
	good, err := app.Worker(s.cfg, s.st, s.tc, app.WorkerOptions{})
	require.NoError(t, err)
	require.NoError(t, good.Start())
	s.worker = good

	dry := cli("--dry-run", "--failure", "BadBuild")
	t.Logf("dry run:\n%s", dry)
	for _, e := range s.ds.Expect {
		assert.Contains(t, dry, workflows.RequestWorkflowID(e.MessageID), "the dry run lists every failed request")
	}
	assert.Equal(t, n, strings.Count(dry, "re-running activity route-to-team"), dry)
	assert.Contains(t, dry, "would be reset (dry run: nothing done)")
	time.Sleep(2 * time.Second)
	assert.Equal(t, posted, len(s.cards()), "the dry run changed nothing")
	assert.EqualValues(t, n, s.count(t, failedQuery))
	assert.Zero(t, s.count(t, "WorkflowType = 'AppointmentRequest' AND ExecutionStatus = 'Running'"))

	// Two are restarted from their PKB message, by query; the rest are
	// reset, and the two are skipped as already reprocessed.
	var two []string
	for _, e := range s.ds.Expect[:2] {
		two = append(two, "WorkflowId = '"+workflows.RequestWorkflowID(e.MessageID)+"'")
	}
	restarted := cli("--mode", "restart", "--query", "ExecutionStatus = 'Failed' AND ("+strings.Join(two, " OR ")+")")
	assert.Contains(t, restarted, "2 selected: 0 reset, 2 restarted, 0 skipped", restarted)
	real := cli("--failure", "BadBuild", "--rate", "20")
	t.Logf("real run: %s", real)
	assert.Contains(t, real, "8 selected: 6 reset, 0 restarted, 2 skipped", real)
	again := cli("--failure", "BadBuild", "--rate", "20")
	assert.Contains(t, again, "0 reset, 0 restarted, 8 skipped", "a second run is harmless")

	// Every request now routes and closes, with one card each.
	waitFor(t, "every request routed again", limit(2*time.Minute), func() bool { return len(s.cards()) >= n })
	s.sim.SetAutoPAS(time.Second)
	for _, ms := range s.slack.Roots(triage) {
		if wf := ms.Button(slackmsg.ActionDone); wf != "" {
			require.Equal(t, http.StatusOK, s.press(t, slackmsg.ActionDone, wf, "UTRIAGE", time.Now(), signingSecret))
		}
	}
	waitFor(t, "every request completed", limit(3*time.Minute), func() bool {
		return s.count(t, "WorkflowType = 'AppointmentRequest' AND ExecutionStatus = 'Completed'") >= n
	})
	cards := s.cards()
	assert.Len(t, cards, n)
	for ref, ms := range cards {
		assert.Len(t, ms, 1, "request %s posted %d times", ref, len(ms))
	}
	rows, err := s.st.AllRequests(ctx)
	require.NoError(t, err)
	for _, r := range rows {
		assert.NotNil(t, r.ClosedAt, "%s closed in the read model", r.Ref)
	}
}
