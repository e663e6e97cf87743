package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/codec"
	"github.com/rebookhq/rebook/internal/replay"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/rebookhq/rebook/workflows"
)

// RecordEnv names the directory `make record-histories` writes each
// end-to-end test's histories to.
const RecordEnv = "REBOOK_RECORD_HISTORIES"

// recordHistories writes, at the end of a test run with RecordEnv set, up
// to two histories of each workflow type and final request state, and the
// key that opens their payloads, for workflows/testdata/histories.
func (s *stack) recordHistories(t *testing.T, key []byte) {
	root := os.Getenv(RecordEnv)
	if root == "" {
		return
	}
	t.Cleanup(func() {
		ctx := context.Background()
		dir := filepath.Join(root, t.Name())
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "key"), []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o644))
		kept := map[string]int{}
		err := replay.ForEach(ctx, s.tc, "default", "", func(e *workflowpb.WorkflowExecutionInfo) (bool, error) {
			state := strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
			if p, ok := e.GetSearchAttributes().GetIndexedFields()[workflows.RequestStateKey.GetName()]; ok {
				state += "-" + strings.ReplaceAll(strings.Trim(string(p.GetData()), `"`), " ", "-")
			}
			group := e.GetType().GetName() + "-" + state
			if kept[group] >= 2 {
				return false, nil
			}
			kept[group]++
			h, err := replay.History(ctx, s.tc, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
			if err != nil {
				return false, err
			}
			raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
			if err != nil {
				return false, err
			}
			return false, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.json", group, kept[group])), raw, 0o644)
		})
		require.NoError(t, err)
		t.Logf("recorded histories in %s: %v", dir, kept)
	})
}

// A request whose wait began longer ago than its SLA (here one carried
// into a new run, as continue-as-new does) is reminded and escalated once
// each, and still closes when the PAS acts; another is closed by staff as
// not actionable. Then
// every history in the namespace replays on this build, and the same
// histories on a deliberately changed AppointmentRequest are each named.
func TestOverdueRequestEscalatesAndHistoriesReplay(t *testing.T) {
	const n = 6
	s := start(t, n)
	ctx := context.Background()
	require.NoError(t, s.startSchedules(ctx))
	waitFor(t, "all routed", limit(2*time.Minute), func() bool { return len(s.cards()) >= n })
	time.Sleep(time.Second)

	var req activities.MessageRef
	var carried workflows.Carried
	rows, err := s.st.AllRequests(ctx)
	require.NoError(t, err)
	for _, r := range rows {
		if r.Triage || r.RequestType != string(subject.Cancel) || r.SlackTS == "" || r.AppointmentStart == nil {
			continue
		}
		rule, ok := routing.Match(s.rules, r.Specialty, r.Clinic, r.RequestType)
		require.True(t, ok)
		sla := time.Duration(rule.SLAHours) * time.Hour
		req = activities.MessageRef{ID: r.MessageID, Timestamp: r.ReceivedAt.UnixMilli()}
		carried = workflows.Carried{
			Facts: activities.MessageFacts{PatientID: r.PatientID, ReceivedAt: r.ReceivedAt, Readable: true, Type: r.RequestType, Start: *r.AppointmentStart},
			Match: activities.Match{Found: true, AppointmentID: r.AppointmentID, Specialty: r.Specialty, SpecialtyCode: r.SpecialtyCode,
				Clinic: r.Clinic, Start: *r.AppointmentStart, PlacerID: r.PlacerID},
			Route: activities.Route{Team: r.Team, Channel: rule.SlackChannel, ChannelID: r.SlackChannel, TS: r.SlackTS, Ref: r.Ref, SLAHours: rule.SLAHours},
			State: workflows.StateRouted, Seq: 100, SafetyEvery: workflows.SafetyCheckEvery,
			WaitStart: time.Now().Add(-sla - time.Hour), NextCheck: time.Now().Add(time.Minute),
		}
		break
	}
	require.NotEmpty(t, req.ID, "a routed cancel request")
	wid := workflows.RequestWorkflowID(req.ID)
	require.NoError(t, s.tc.TerminateWorkflow(ctx, wid, "", "test: carried into a run whose wait began before its SLA"))
	_, err = s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE}, workflows.AppointmentRequestWorkflow, req, &carried)
	require.NoError(t, err)

	// The reminder goes to the card's thread, the escalation to triage.
	posts := func(prefix string, inThread bool) int {
		c := 0
		for _, m := range s.slack.Messages() {
			if strings.Contains(m.Text, prefix) && (m.ThreadTS == carried.Route.TS) == inThread {
				c++
			}
		}
		return c
	}
	reminder, overdue := "Reminder: "+carried.Route.Ref, "Overdue: "+carried.Route.Ref
	waitFor(t, "the reminder and the escalation", limit(time.Minute), func() bool {
		return posts(reminder, true) > 0 && posts(overdue, false) > 0
	})
	// Staff close another as not actionable (a path of its own in the
	// recorded histories).
	var staffClosed string
	for ref, ms := range s.cards() {
		if ref != carried.Route.Ref && s.slack.Name(ms[0].Channel) != triage {
			staffClosed = ms[0].Button(slackmsg.ActionCantAction)
			require.Equal(t, http.StatusOK, s.press(t, slackmsg.ActionCantAction, staffClosed, "USTAFF", time.Now(), signingSecret))
			break
		}
	}
	require.NotEmpty(t, staffClosed)
	s.closeAll(t, n, limit(3*time.Minute))
	row, err := s.st.Request(ctx, mustMessageID(t, staffClosed))
	require.NoError(t, err)
	assert.Equal(t, workflows.StateClosedByStaff, row.State)
	assert.Equal(t, "USTAFF", row.ClosedBy)
	assert.Equal(t, 1, posts(reminder, true), "one reminder")
	assert.Equal(t, 1, posts(overdue, false), "one escalation")

	dc, err := codec.DataConverter(s.cfg.EncryptionKey)
	require.NoError(t, err)
	results, err := replay.Live(ctx, s.tc, dc, replay.Options{Namespace: "default"})
	require.NoError(t, err)
	types := map[string]int{}
	for _, r := range results {
		types[r.Type]++
		assert.NoError(t, r.Err, "%s %s (%s) does not replay", r.WorkflowID, r.RunID, r.Type)
	}
	t.Logf("live histories replayed: %v", types)
	assert.GreaterOrEqual(t, types[workflows.AppointmentRequestWorkflow], n+1, "every request, and the terminated run")
	assert.Positive(t, types[workflows.TokenKeeperWorkflow])
	assert.Positive(t, types[workflows.PollMessagesWorkflow])

	changed := replay.Replace(workflows.AppointmentRequestWorkflow, func(ctx workflow.Context, ref activities.MessageRef, carried *workflows.Carried) (workflows.Outcome, error) {
		// Unversioned: a new first activity.
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		if err := workflow.ExecuteActivity(actx, "check-something-first").Get(ctx, nil); err != nil {
			return workflows.Outcome{}, err
		}
		return workflows.Outcome{}, nil
	})
	results, err = replay.Live(ctx, s.tc, dc, replay.Options{Namespace: "default", Query: "WorkflowType = '" + workflows.AppointmentRequestWorkflow + "'", Register: changed})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(results), n)
	for _, r := range results {
		require.Error(t, r.Err, "%s replayed on a changed workflow", r.WorkflowID)
		assert.True(t, replay.Nondeterministic(r.Err), "%s: %v", r.WorkflowID, r.Err)
		assert.NotEmpty(t, r.WorkflowID)
	}
}
